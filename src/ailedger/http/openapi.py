"""The OpenAPI 3.0 description of the HTTP API (kept by hand; tests run schemathesis against it)."""

from __future__ import annotations

from typing import Any

__all__ = ["openapi_spec"]

_ERR = {"$ref": "#/components/schemas/Error"}


def _err(desc: str) -> dict[str, Any]:
    return {"description": desc, "content": {"application/json": {"schema": _ERR}}}


def _retry(desc: str) -> dict[str, Any]:
    r = _err(desc)
    r["headers"] = {"Retry-After": {"schema": {"type": "string"}, "description": "seconds"}}
    return r


_COMMON = {"503": _retry("overloaded, or the store is unavailable; retry later")}
_HEX32 = {"type": "string", "pattern": "^[0-9a-f]{64}$"}
_INDEX_PARAM = {"name": "index", "in": "path", "required": True,
                "schema": {"type": "integer", "minimum": 0, "maximum": 9223372036854775807}}


def _json(schema: dict[str, Any], desc: str = "OK") -> dict[str, Any]:
    return {"description": desc, "content": {"application/json": {"schema": schema}}}


def _html(desc: str) -> dict[str, Any]:
    return {"description": desc, "content": {"text/html": {"schema": {"type": "string"}}}}


def _web_paths() -> dict[str, Any]:
    """The explorer's pages (HTML; errors are HTML pages too)."""
    nf = _html("not found page (or a JSON error when the path does not match the page's pattern at all)")
    nf["content"]["application/json"] = {"schema": _ERR}
    page = {"200": _html("page"), "400": _html("bad request page (a malformed reference, page number or type)"),
            "404": nf, "503": _html("store unavailable page")}
    ref = {"in": "path", "required": True, "schema": {"type": "string"}}
    from ailedger.http.lists import KINDS  # the explorer's list pages (the menu)

    page_q = {"name": "page", "in": "query", "required": False, "schema": {"type": "string"}}
    type_q = {"name": "type", "in": "query", "required": False, "schema": {"type": "string"}}
    lists = {f"/{kind}": {"get": {"summary": f"Explorer: {what}",
                                  "parameters": [page_q] + ([type_q] if kind == "entries" else []),
                                  "responses": page}}
             for kind, (_, what) in KINDS.items()}
    return {
        **lists,
        "/proposals/{pid}": {"get": {"summary": "Explorer: a governance proposal (state, tally, votes)",
                                     "parameters": [{**_INDEX_PARAM, "name": "pid"}], "responses": page}},
        "/checkpoints/{size}": {"get": {"summary": "Explorer: a stored checkpoint (note, cosignatures, anchors)",
                                        "parameters": [{**_INDEX_PARAM, "name": "size"}], "responses": page}},
        "/": {"get": {"summary": "Explorer: log health", "responses": page}},
        "/entry/{index}": {"get": {"summary": "Explorer: an entry with its proof and verdict",
                                   "parameters": [_INDEX_PARAM], "responses": page}},
        "/model/{ref}": {"get": {"summary": "Explorer: a model (name or #index) and its lineage",
                                 "parameters": [{"name": "ref", **ref}], "responses": page}},
        "/dataset/{ref}": {"get": {"summary": "Explorer: a dataset (name or #index)",
                                   "parameters": [{"name": "ref", **ref}], "responses": page}},
        "/item/{epc}": {"get": {"summary": "Explorer: an EPCIS item's journey (SVG) with proofs and inspection verdicts",
                                "parameters": [{"name": "epc", **ref}], "responses": page}},
        "/identity/{did}": {"get": {"summary": "Explorer: an identity and everything it signed",
                                    "parameters": [{"name": "did", **ref}], "responses": page}},
        "/search": {"get": {"summary": "Explorer: search", "parameters": [
            {"name": "q", "in": "query", "required": False, "schema": {"type": "string"}}],
            "responses": {"200": _html("results page"), "303": {"description": "a single exact hit: its page"},
                          "400": _html("bad request page"), "503": _html("store unavailable page")}}},
    }


def openapi_spec(origin: str = "ailedger", web: bool = True) -> dict[str, Any]:
    entry_schema = {
        "type": "object",
        "description": "A signed entry (see ailedger.encoding.records): Ed25519 by the signer did:key over the "
                       "RFC 8785 canonical bytes of the object without sig.",
        "required": ["type", "v", "body", "signer", "time", "sig"],
        "additionalProperties": False,
        "properties": {
            "type": {"type": "string", "pattern": "^[a-z][a-z0-9_-]*(\\.[a-z][a-z0-9_-]*)*$", "maxLength": 64},
            "v": {"type": "integer", "minimum": 1, "maximum": 1000},
            "body": {"type": "object"},
            "signer": {"type": "string", "pattern": "^did:key:z[1-9A-HJ-NP-Za-km-z]{40,60}$"},
            "time": {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,9})?Z$"},
            "sig": {"type": "string", "description": "base64 Ed25519 signature"},
        },
    }
    result = {"type": "object", "required": ["index", "leaf_hash", "duplicate"],
              "properties": {"index": {"type": "integer", "minimum": 0}, "leaf_hash": _HEX32,
                             "duplicate": {"type": "boolean"}}}
    write_errors = {
        "400": _err("malformed JSON, bad schema, stale time, or a rejected batch"),
        "401": _err("an identity registration without a valid credential (operator token or a registered "
                    "sponsor's RFC 9421 signature); see docs/api.md Authentication"),
        "403": _err("an entry signature that does not verify, an unknown (unregistered) or revoked identity, "
                    "a registration signed by a key that is not a registered identity, or a signer without authority "
                    "for the entry type (not_authorised; docs/authority.md)"),
        "408": _err("the request body did not arrive within its deadline"),
        "413": _err("request body too large"),
        "429": _retry("per-identity rate limit exceeded"),
        **_COMMON,
    }
    octet = {"description": "tile bytes", "content": {"application/octet-stream": {
        "schema": {"type": "string", "format": "binary"}}}}
    tile_errors = {"404": _err("no tile at this path: beyond the tree, not the canonical C2SP path, or a "
                               "partial tile no checkpoint needs or whose full tile exists"), **_COMMON}
    tile_note = ("C2SP tlog-tiles. <N> is the index in 3-digit groups, all but the last prefixed by x "
                 "(e.g. x001/234); a partial tile adds .p/<W> (W 1-255, no leading zeroes). Only the "
                 "canonical path of a tile is served, as on the static mirror. Full tiles are immutable.")
    return {
        "openapi": "3.0.3",
        "info": {"title": f"ailedger log {origin}", "version": "1",
                 "description": "Append-only transparency log of signed AI records. See docs/api.md."},
        "paths": {
            "/checkpoint": {"get": {
                "summary": "Latest signed checkpoint (C2SP tlog-checkpoint in a signed note)",
                "responses": {"200": {"description": "signed note", "content": {
                    "text/plain": {"schema": {"type": "string"}}}}, **_COMMON}}},
            "/tile/{level}/{index}": {"get": {
                "summary": "Hash tile", "description": tile_note,
                "parameters": [
                    {"name": "level", "in": "path", "required": True,
                     "schema": {"type": "integer", "minimum": 0, "maximum": 63}},
                    {"name": "index", "in": "path", "required": True,
                     "schema": {"type": "string", "pattern": r"^(x[0-9]{3}/)*[0-9]{3}(\.p/[1-9][0-9]{0,2})?$"}},
                ],
                "responses": {"200": octet, **tile_errors}}},
            "/tile/entries/{index}": {"get": {
                "summary": "Entry bundle (16-bit big-endian length prefix per entry)", "description": tile_note,
                "parameters": [
                    {"name": "index", "in": "path", "required": True,
                     "schema": {"type": "string", "pattern": r"^(x[0-9]{3}/)*[0-9]{3}(\.p/[1-9][0-9]{0,2})?$"}}],
                "responses": {"200": octet, **tile_errors}}},
            "/v1/log": {"get": {"summary": "Log facts and write policy", "responses": {
                "200": _json({"type": "object", "required": ["origin", "size", "vkey", "checkpoint"]}),
                **_COMMON}}},
            "/healthz": {"get": {"summary": "Liveness", "responses": {
                "200": _json({"type": "object", "required": ["ok", "size"]}), **_COMMON}}},
            "/v1/entries": {"post": {
                "summary": "Submit one signed entry",
                "requestBody": {"required": True, "content": {"application/json": {"schema": entry_schema}}},
                "responses": {"201": _json(result, "appended"), "200": _json(result, "already in the log"),
                              **write_errors}}},
            "/v1/entries/batch": {"post": {
                "summary": "Submit up to max_batch signed entries, all-or-nothing",
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["entries"], "additionalProperties": False,
                    "properties": {"entries": {"type": "array", "items": entry_schema}}}}}},
                "responses": {
                    "201": _json({"type": "object", "required": ["results", "appended", "duplicates"],
                                  "properties": {"results": {"type": "array", "items": result},
                                                 "appended": {"type": "integer"},
                                                 "duplicates": {"type": "integer"}}}, "appended"),
                    "200": _json({"type": "object", "required": ["results"]}, "all were already in the log"),
                    **write_errors}}},
            "/v1/identities": {"post": {
                "summary": "Register an identity: a self-signed identity.register entry (body.did == signer)",
                "requestBody": {"required": True, "content": {"application/json": {"schema": entry_schema}}},
                "responses": {"201": _json(result, "registered"), "200": _json(result, "already registered"),
                              **write_errors}}},
            "/v1/entries/{index}": {"get": {
                "summary": "An entry", "parameters": [_INDEX_PARAM],
                "responses": {"200": _json({"type": "object", "required": ["index", "leaf_hash", "entry"]}),
                              "404": _err("no such entry"), **_COMMON}}},
            "/v1/entries/{index}/raw": {"get": {
                "summary": "An entry's leaf bytes (RFC 8785 JSON)", "parameters": [_INDEX_PARAM],
                "responses": {"200": _json({"type": "object"}), "404": _err("no such entry"), **_COMMON}}},
            "/v1/entries/{index}/proof": {"get": {
                "summary": "C2SP tlog-proof bundle for the entry against the latest checkpoint",
                "parameters": [_INDEX_PARAM],
                "responses": {"200": {"description": "tlog-proof", "content": {
                    "text/plain": {"schema": {"type": "string"}}}}, "404": _err("no such entry"), **_COMMON}}},
            "/v1/entries/{index}/inclusion": {"get": {
                "summary": "RFC 6962 inclusion proof", "parameters": [
                    _INDEX_PARAM,
                    {"name": "tree_size", "in": "query", "required": False,
                     "schema": {"type": "integer", "minimum": 1}}],
                "responses": {"200": _json({"type": "object",
                                            "required": ["index", "tree_size", "leaf_hash", "root", "proof"]}),
                              "400": _err("bad tree size"), "404": _err("no such entry"), **_COMMON}}},
            "/v1/consistency": {"get": {
                "summary": "RFC 6962 consistency proof between two tree sizes", "parameters": [
                    {"name": "old", "in": "query", "required": True, "schema": {"type": "integer", "minimum": 1}},
                    {"name": "new", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 1}}],
                "responses": {"200": _json({"type": "object",
                                            "required": ["old", "new", "old_root", "new_root", "proof"]}),
                              "400": _err("bad sizes"), **_COMMON}}},
            "/v1/search": {"get": {
                "summary": "Entries matching all given filters, in log order", "parameters": [
                    {"name": "subject", "in": "query", "schema": {"type": "string"},
                     "description": "index term subject:<value>, e.g. an artifact digest sha256:..."},
                    {"name": "signer", "in": "query", "schema": {"type": "string"}},
                    {"name": "type", "in": "query", "schema": {"type": "string"}},
                    {"name": "term", "in": "query", "schema": {"type": "string"}, "description": "raw index term"},
                    {"name": "after", "in": "query", "schema": {"type": "integer", "minimum": 0},
                     "description": "first index to consider"},
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000}}],
                "responses": {"200": _json({"type": "object", "required": ["results", "next_after"]}),
                              "400": _err("no filter or bad parameter"), **_COMMON}}},
            "/v1/models/{name}": {"get": {
                "summary": "A model's status: usable or revoked/suspended, on whose word (docs/authority.md)",
                "parameters": [{"name": "name", "in": "path", "required": True,
                                "schema": {"type": "string", "minLength": 1, "maxLength": 200}}],
                "responses": {"200": _json({
                    "type": "object", "required": ["name", "state", "usable", "rulings"],
                    "properties": {
                        "name": {"type": "string"},
                        "state": {"type": "string", "enum": ["unregistered", "active", "approved", "suspended",
                                                             "revoked"]},
                        "usable": {"type": "boolean"}, "by": {"type": "string", "nullable": True},
                        "authority": {"type": "string", "nullable": True},
                        "entry": {"type": "integer", "nullable": True}, "reason": {"type": "string"},
                        "owner": {"type": "string", "nullable": True},
                        "registration": {"type": "integer", "nullable": True},
                        "versions": {"type": "array", "items": {"type": "integer"}},
                        "rulings": {"type": "array", "items": {"type": "object"}},
                        "ignored": {"type": "array", "items": {"type": "object"}}}}),
                              "400": _err("not a model name"),
                              "404": _err("a path the route does not take (e.g. control characters)"), **_COMMON}}},
            **{f"/v1/epcis/{kind}": {"get": {
                "summary": f"An EPCIS item's {what}, every event with its inclusion proof (docs/supply-chain.md)",
                "parameters": [{"name": "epc", "in": "query", "required": True,
                                "schema": {"type": "string", "minLength": 1, "maxLength": 290}},
                               *([{"name": "direction", "in": "query", "required": False,
                                   "schema": {"type": "string", "enum": ["forward", "backward"]}}]
                                 if kind == "trace" else [])],
                "responses": {"200": _json({"type": "object", "required": ["events", "vkey", "size"]}),
                              "400": _err("a bad or missing epc or direction"),
                              "404": _err("no logged EPCIS event names the item"), **_COMMON}}}
               for kind, what in (("trace", "trace (forward or backward)"), ("recall", "recall report"))},
            **(_web_paths() if web else {}),
        },
        "components": {"schemas": {"Error": {
            "type": "object", "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}}},
    }
