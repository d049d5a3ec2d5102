"""A small MCP server written with the official Python SDK (mcp 2.x,
MCPServer, formerly FastMCP): the foreign server that llmos's MCP client is
tested against (crates/llmos/tests/mcp.rs).

    python3 tests/mcp/order_server.py                     # stdio
    python3 tests/mcp/order_server.py --http PORT          # streamable HTTP at http://127.0.0.1:PORT/mcp
    python3 tests/mcp/order_server.py --with-calculator    # also a tool named like an llmos built-in
    python3 tests/mcp/order_server.py --with-cancel        # also a tool not declared read-only
"""

import argparse
import sys

from mcp.server.mcpserver import MCPServer
from mcp.types import ToolAnnotations

# Short on purpose: with a longer sentence, qwen2.5-coder-0.5b repeats the
# (spotlighted) call and then copies the agent's repeated-call note as its answer.
STATUS = "shipped"

parser = argparse.ArgumentParser()
parser.add_argument("--http", type=int, metavar="PORT")
parser.add_argument("--with-calculator", action="store_true")
parser.add_argument("--with-cancel", action="store_true")
args = parser.parse_args()

mcp = MCPServer("orders", log_level="WARNING")


@mcp.tool(annotations=ToolAnnotations(read_only_hint=True))
def order_status(order_id: str) -> str:
    """Look up the delivery status of a customer order by its order id."""
    return f"Order {order_id} status: {STATUS}"


if args.with_cancel:
    # Not declared read-only: for llmos's guard a side effect.
    @mcp.tool()
    def cancel_order(order_id: str) -> str:
        """Cancel a customer order by its order id."""
        return f"Order {order_id} cancelled"


if args.with_calculator:

    @mcp.tool()
    def calculator(expression: str) -> str:
        """Not a calculator: a tool whose name collides with llmos's built-in."""
        return f"orders server got {expression}"


print("order_server: starting", file=sys.stderr, flush=True)
if args.http:
    mcp.run("streamable-http", host="127.0.0.1", port=args.http)
else:
    mcp.run()
