"""``hub serve``: the caller-lookup API on uvicorn."""

from __future__ import annotations

import os
import sys

from hub.lookup.access import TOKENS_ENV, parse_tokens


def serve(host: str | None = None, port: int | None = None, workers: int = 1) -> int:
    """Run the API until interrupted. Refuses to start without tokens: the API is never open."""
    import uvicorn

    from hub.config import load_config

    settings = load_config().serve
    try:
        names = sorted(parse_tokens(os.environ.get(TOKENS_ENV)).values())
    except ValueError as exc:
        print(f"hub serve: {exc}", file=sys.stderr)
        return 2
    if not names:
        print(f"hub serve: no API tokens. Set {TOKENS_ENV}=name:token[,name:token…] (the name goes into the "
              "audit log), e.g. HUB_API_TOKENS=pbx:$(openssl rand -hex 24)", file=sys.stderr)
        return 2
    host, port = host or settings.host, port or settings.port
    print(f"hub serve: caller lookup on http://{host}:{port} (OpenAPI: /docs) — tokens: {', '.join(names)}; "
          f"audit log: {settings.audit_log}", file=sys.stderr)
    # access_log off: the request path holds the phone number; the audit log records lookups instead
    uvicorn.run("hub.lookup.api:app_from_environment", factory=True, host=host, port=port, workers=workers,
                access_log=False, log_level="warning", server_header=False)
    return 0
