"""Run the sandbox by hand: ``python -m hub.sandbox serve .hub/sandbox --customers 2000``.

Prints the endpoints (as the ``HUB_*`` environment variables ``hub demo`` uses) and serves until Ctrl-C;
``mutate`` applies one round of incremental changes to a stopped world; ``delete-shop-customer``, ``unfollow``,
``deactivate-party``, ``delete-party``, ``opt-in`` / ``opt-out`` change one record by hand.
"""

from __future__ import annotations

import argparse
import signal
import time
from pathlib import Path

from hub.sandbox import SandboxWorld


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m hub.sandbox")
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("create", "serve", "mutate"):
        p = sub.add_parser(name)
        p.add_argument("dir", type=Path)
        p.add_argument("--customers", type=int, default=2000)
        p.add_argument("--seed", type=int, default=42)
        p.add_argument("--erp-url", default=None, help="SQLAlchemy URL (default: SQLite file in DIR)")
    sub.choices["serve"].add_argument("--webshop-port", type=int, default=0)
    sub.choices["serve"].add_argument("--wechat-port", type=int, default=0)
    sub.choices["serve"].add_argument("--faults", default="", help='e.g. "webshop:429@3-5;wechat:45011@2"')
    sub.choices["mutate"].add_argument("--fraction", type=float, default=0.01)
    for name, what in (("delete-shop-customer", "shop customer id"), ("unfollow", "openid"),
                       ("deactivate-party", "ERP party id"), ("delete-party", "ERP party id"),
                       ("opt-in", "shop customer id"), ("opt-out", "shop customer id")):
        p = sub.add_parser(name, help=f"change one record by hand ({what})")
        p.add_argument("dir", type=Path)
        p.add_argument("id", help=what)
    args = ap.parse_args(argv)
    if args.cmd in ("delete-shop-customer", "unfollow", "deactivate-party", "delete-party", "opt-in", "opt-out"):
        world = SandboxWorld.create_or_load(args.dir)
        {"delete-shop-customer": lambda i: world.delete_shop_customer(int(i)), "unfollow": world.unfollow,
         "deactivate-party": lambda i: world.deactivate_party(int(i)),
         "delete-party": lambda i: world.delete_party(int(i)),
         "opt-in": lambda i: world.set_marketing_consent(int(i), True),
         "opt-out": lambda i: world.set_marketing_consent(int(i), False)}[args.cmd](args.id)
        print(f"{args.cmd} {args.id}: done")
        return 0

    t = time.perf_counter()
    world = SandboxWorld.create_or_load(args.dir, customers=args.customers, seed=args.seed, erp_url=args.erp_url)
    print(f"world {world.dir} ready in {time.perf_counter() - t:.1f} s ({world.meta['customers']} people)")
    if args.cmd == "mutate":
        print(world.mutate(args.fraction, seed=args.seed))
    elif args.cmd == "serve":
        if args.faults:
            world.faults = args.faults
        # SIGTERM ends the serving loop as Ctrl-C does (Python's own handler for it raises KeyboardInterrupt). Not
        # with an Event set by a handler: the handler runs in the main thread, and when the signal came while that
        # thread held the Event's lock (inside wait) its set() waited for it forever. Not one long sleep either:
        # the kernel may hand the signal to a server thread, and nothing then wakes the main thread to run the
        # handler (seen: CI's sandbox hung on SIGTERM, its state unsaved). Short sleeps: it runs within 0.2 s.
        signal.signal(signal.SIGTERM, signal.default_int_handler)
        with world.serve(args.webshop_port, args.wechat_port) as ep:
            try:  # a signal as soon as the variables are read (a harness's) ends here too
                print(f"HUB_ERP_URL={ep.erp_url}\nHUB_WEBSHOP_URL={ep.webshop_url}\nHUB_WEBSHOP_KEY={ep.webshop_key}\n"
                      f"HUB_WEBSHOP_SECRET={ep.webshop_secret}\nHUB_WECHAT_URL={ep.wechat_url}\n"
                      f"HUB_WECHAT_APPID={ep.wechat_appid}\nHUB_WECHAT_SECRET={ep.wechat_secret}\n"
                      f"HUB_CDR_DIR={ep.cdr_dir}", flush=True)
                while True:
                    time.sleep(0.2)
            except KeyboardInterrupt:
                pass
        print("stopped; state saved")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
