"""Source-system connectors. Each module holds one small class on the shared base (``base.py``):

- ``sql_erp.SqlErpConnector(url, tables)`` — any SQL ERP database, tables declared in YAML
  (``sql_erp_sandbox.yaml`` for the sandbox's Tryton-style schema); entities customers/orders/shipments.
- ``tryton.TrytonConnector`` — a real Tryton server over JSON-RPC.
- ``woocommerce.WooCommerceConnector(base_url, key, secret)`` — customers, orders.
- ``wechat.WeChatConnector(base_url, appid, secret)`` — followers.
- ``cdr.AsteriskCdrConnector(drop_dir)`` — calls from ``Master.csv``.

Drive them with ``base.run_pull(connector, store, entity)`` and ``base.run_push(connector, store, target)``.
Modules are imported lazily by the caller so a missing optional driver never breaks the others.
"""
