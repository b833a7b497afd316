"""Schemathesis hooks for the API fuzz test (Tests/HawserNodeTests/APIFuzzTests.swift).

Two rules of the documents cannot be said in JSON Schema, so the documents state them in prose,
and the cases they make ambiguous are dropped here. Nothing else is.

- docs/openapi.json, NotarisationRequest and TimeWindow: the notary refuses a request whose time
  window ends before it starts, or that names a state ref twice, with 400 and the rule's code. A
  positive case that breaks such a rule is not a valid request refused.
- docs/node-openapi.json, POST /v1/flows: a start whose clientRequestId names an existing flow
  returns that flow (200) without looking at the rest of the body. A negative case with a
  clientRequestId is therefore not an invalid request accepted.
"""
import re

import schemathesis


def _key(ref):
    # Transaction ids compare without regard to case (docs/notary-protocol.md section 5).
    return ref.lower() if isinstance(ref, str) else ref


_INSTANT = re.compile(r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?(?:[Zz]|([+-])(\d{2}):(\d{2}))")


def _microseconds(text):
    """An RFC 3339 time as microseconds since 1970 (years 0000-9999, as the notary reads them)."""
    match = _INSTANT.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(match.group(i)) for i in range(1, 7))
    # Days from the civil date (proleptic Gregorian), as HawserCore's Instant counts them.
    y = year - 1 if month <= 2 else year
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    doy = (153 * (month - 3 if month > 2 else month + 9) + 2) // 5 + day - 1
    days = era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468
    offset = 0
    if match.group(8):
        offset = (1 if match.group(8) == "+" else -1) * (int(match.group(9)) * 3600 + int(match.group(10)) * 60)
    micros = int((match.group(7) or "").ljust(6, "0"))
    return ((days * 86400 + hour * 3600 + minute * 60 + second - offset) * 1_000_000) + micros


def _breaks_a_prose_rule(request):
    if not isinstance(request, dict):
        return False
    window = request.get("timeWindow")
    if isinstance(window, dict):
        start, end = _microseconds(window.get("from")), _microseconds(window.get("until"))
        if start is not None and end is not None and start >= end:
            return True
    inputs = [_key(r) for r in request.get("inputs") or [] if isinstance(r, str)]
    references = [_key(r) for r in request.get("references") or [] if isinstance(r, str)]
    return len(set(inputs)) != len(inputs) or len(set(references)) != len(references) or bool(set(inputs) & set(references))


@schemathesis.hook
def filter_case(context, case):
    meta = case.meta
    if meta is None:
        return True
    operation = (case.operation.method.upper(), case.operation.path)
    if meta.generation.mode.is_positive and operation == ("POST", "/v1/notarise"):
        return not _breaks_a_prose_rule(case.body)
    if meta.generation.mode.is_negative and operation == ("POST", "/v1/flows"):
        return not (isinstance(case.body, dict) and isinstance(case.body.get("clientRequestId"), str))
    return True
