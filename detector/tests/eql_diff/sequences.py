"""Runs EQL sequences through Elastic's Python `eql` (1.0.1) for tests/sequences.rs.

Input on stdin, JSON: {"queries": [text, ...], "events": [{"id": n, "cat": category,
"ts": nanoseconds, "doc": {field: value}}, ...]} in timestamp order. Output on stdout, JSON:
{"matches": [[[id, ...], ...] per query]}: each match as its events' ids, in the order the
engine reported them. Python eql counts time in 100 ns ticks, so timestamps are divided by
100 (the generator only uses whole microseconds).
"""
import json
import sys

import eql


def run(query_text, events):
    with eql.parser.elasticsearch_syntax, eql.parser.ignore_missing_functions, eql.parser.allow_runs:
        query = eql.parse_query(query_text)
    engine = eql.PythonEngine()
    out = []
    engine.add_query(query)
    engine.add_output_hook(lambda o: out.append([e.data["id"] for e in o.events]))
    engine.stream_events(events)
    engine.finalize()
    return out


def main():
    spec = json.load(sys.stdin)
    events = [eql.Event(e["cat"], e["ts"] // 100, dict(e["doc"], id=e["id"])) for e in spec["events"]]
    json.dump({"matches": [run(q, events) for q in spec["queries"]]}, sys.stdout)


if __name__ == "__main__":
    main()
