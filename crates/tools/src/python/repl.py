# The long-lived Python process of a `python` tool session, run inside the
# sandbox. Protocol: one JSON request per line on stdin
#   {"code": "...", "cpu_s": 10}
# and one JSON reply per line on the original stdout
#   {"ok": true|false, "error": "ZeroDivisionError"|null}
# Each cell's stdout and stderr go to files the host created in /run/llmos-io
# (the host reads them from its own open handles and applies the size cap).
import ast, json, os, resource, sys, traceback

_proto_in = os.fdopen(os.dup(0), "r", encoding="utf-8")
_proto_out = os.fdopen(os.dup(1), "w", encoding="utf-8")
_null = os.open("/dev/null", os.O_RDONLY)
os.dup2(_null, 0)
os.close(_null)
sys.path.insert(0, os.getcwd())
_ns = {"__name__": "__main__", "__builtins__": __builtins__}


def _run(code, cpu_s):
    out = os.open("/run/llmos-io/stdout", os.O_WRONLY | os.O_TRUNC)
    err = os.open("/run/llmos-io/stderr", os.O_WRONLY | os.O_TRUNC)
    sys.stdout.flush(); sys.stderr.flush()
    os.dup2(out, 1); os.dup2(err, 2)
    os.close(out); os.close(err)
    # Per-cell CPU budget: lower the soft limit to what this process used so far plus cpu_s.
    soft, hard = resource.getrlimit(resource.RLIMIT_CPU)
    ru = resource.getrusage(resource.RUSAGE_SELF)
    want = int(ru.ru_utime + ru.ru_stime) + 1 + cpu_s
    if hard != resource.RLIM_INFINITY:
        want = min(want, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (want, hard))
    error = None
    try:
        tree = ast.parse(code, "<cell>", "exec")
        last = None
        if tree.body and isinstance(tree.body[-1], ast.Expr):
            last = ast.Expression(tree.body.pop().value)
        exec(compile(tree, "<cell>", "exec"), _ns)
        if last is not None:
            value = eval(compile(last, "<cell>", "eval"), _ns)
            if value is not None:
                print(repr(value))
    except SystemExit as e:
        if e.code not in (None, 0):
            error = "SystemExit(%r)" % (e.code,)
            print("SystemExit:", e.code, file=sys.stderr)
    except BaseException as e:
        error = type(e).__name__
        tb = e.__traceback__
        # Drop this function's frame: the model should see only its own code.
        traceback.print_exception(type(e), e, tb.tb_next if tb is not None else None)
    finally:
        try:
            sys.stdout.flush(); sys.stderr.flush()
        except BaseException:
            pass
    return error


for line in _proto_in:
    try:
        req = json.loads(line)
        error = _run(req["code"], int(req.get("cpu_s", 10)))
        reply = {"ok": error is None, "error": error}
    except BaseException as e:  # a broken request: say so, keep serving
        reply = {"ok": False, "error": "protocol: %s" % (e,)}
    _proto_out.write(json.dumps(reply) + "\n")
    _proto_out.flush()
