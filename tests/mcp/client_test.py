"""The official Python MCP SDK (mcp 2.x) as the client of `llmos mcp`, over
stdio or streamable HTTP. Run by crates/llmos/tests/mcp.rs:

    python3 tests/mcp/client_test.py --root DIR --stdio LLMOS [ARGS...]
    python3 tests/mcp/client_test.py --root DIR --url http://127.0.0.1:PORT/mcp

DIR holds hello.txt (written by the Rust test) and is the server's --files
root. Exits non-zero, with the reason on stderr, when a check fails.
"""

import argparse
import asyncio
import sys

from mcp import Client, MCPError, StdioServerParameters

# python3 -c 'print(2**100)'
TWO_POW_100 = "1267650600228229401496703205376"


def text_of(result):
    return "\n".join(c.text for c in result.content if getattr(c, "type", "") == "text")


async def check(client, root):
    tools = {t.name: t for t in (await client.list_tools()).tools}
    assert {"calculator", "files"} <= set(tools), f"tools listed: {sorted(tools)}"
    schema = tools["calculator"].input_schema
    assert schema.get("type") == "object" and "expression" in schema.get("properties", {}), schema
    assert schema.get("additionalProperties") is False, schema
    assert tools["calculator"].description, "calculator has no description"
    print(f"ok: tools/list gives {sorted(tools)} with their schemas")

    r = await client.call_tool("calculator", {"expression": "2**100", "digits": None})
    assert not r.is_error, r
    assert text_of(r) == TWO_POW_100, f"2**100 gave {text_of(r)!r}"
    print("ok: calculator 2**100 exact")

    r = await client.call_tool(
        "files",
        {"operation": "read", "path": "hello.txt", "pattern": None, "start_line": None,
         "end_line": None, "content": None, "append": None},
    )
    assert not r.is_error, r
    assert "hello from the llmos mcp test" in text_of(r), text_of(r)
    print("ok: files read under the root")

    r = await client.call_tool(
        "files",
        {"operation": "read", "path": "../../../etc/passwd", "pattern": None, "start_line": None,
         "end_line": None, "content": None, "append": None},
    )
    assert r.is_error, f"reading outside the root was not an error: {r}"
    print("ok: files outside the root is an error result")

    # Bad arguments: a wrong type, and an expression that does not parse.
    r = await client.call_tool("calculator", {"expression": 5, "digits": None})
    assert r.is_error and "expression" in text_of(r), r
    r = await client.call_tool("calculator", {"expression": "2 +* 3", "digits": None})
    assert r.is_error and text_of(r), r
    print(f"ok: bad arguments are error results ({text_of(r)[:60]!r}...)")

    # A write without --allow-writes: nobody can approve it, so it fails.
    r = await client.call_tool(
        "files",
        {"operation": "write", "path": "new.txt", "pattern": None, "start_line": None,
         "end_line": None, "content": "x", "append": None},
    )
    assert r.is_error and "nothing was written" in text_of(r), r
    print("ok: an unapproved write is an error result")

    try:
        await client.call_tool("no_such_tool", {})
    except MCPError as e:
        print(f"ok: unknown tool is a protocol error ({e})")
    else:
        raise AssertionError("calling an unknown tool did not raise")


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--root", required=True)
    p.add_argument("--url")
    p.add_argument("--stdio", nargs=argparse.REMAINDER)
    a = p.parse_args()
    if a.url:
        target = a.url
    else:
        target = StdioServerParameters(command=a.stdio[0], args=a.stdio[1:])
    async with Client(target, read_timeout_seconds=60) as client:
        await check(client, a.root)
    print("all checks passed")


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except AssertionError as e:
        print(f"FAILED: {e}", file=sys.stderr)
        sys.exit(1)
