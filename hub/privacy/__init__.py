"""Personal data through its whole life: deletes at the source (``tombstones``), erasure on request
(``erasure``), the suppression list that keeps an erased person out (``suppression``) and retention
(``retention``). Consent is merged by ``hub.consent``.

Modules are imported directly (``from hub.privacy.tombstones import ...``): this package imports nothing at
import time, so the stages that use it (staging, golden, push plan) can do so without cycles.
"""
