"""Schemathesis hooks for GAIA's API (SCHEMATHESIS_HOOKS=st_hooks): keep the two waiting
routes from waiting. A claim's long poll (up to 60 s) and the live event stream (endless) are
the documented behaviour, not something to time out on; every other part of their requests is
left as generated."""
import schemathesis


@schemathesis.hook
def before_call(context, case, kwargs):
    if case.operation.path == "/api/v1/claim" and isinstance(case.body, dict):
        wait = case.body.get("wait_ms")
        if isinstance(wait, int) and not isinstance(wait, bool):
            case.body["wait_ms"] = min(wait, 100)
        elif "wait_ms" not in case.body:
            case.body["wait_ms"] = 0
    if case.operation.path == "/api/v1/events" and case.query:
        case.query.pop("stream", None)
