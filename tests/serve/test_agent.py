#!/usr/bin/env python3
"""The agent loop through `llmos serve`, driven by the official `openai` client.

Run by crates/llmos/tests/serve_agent.rs, which starts the server (python off,
so the enabled tools are known):

    python3 tests/serve/test_agent.py --url http://127.0.0.1:PORT/v1 \
        --model qwen2.5-coder-0.5b-instruct

Built-in tools are asked for as llmos's extension, `extra_body={"llmos":
{...}}`: the client sends it unpatched. Every test prints its name and time;
any failure exits non-zero.
"""

import argparse
import json

import openai
from runner import run_tests

ARGS = None
CLIENT = None

# 2**200 / 7, exactly: the numerator is 2**200.
NUMERATOR = str(2**200)

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "description": "The city name"}},
            "required": ["city"],
        },
    },
}


def llmos_of(obj):
    """The `llmos` extension field of a response or chunk (pydantic keeps extras)."""
    extra = obj.model_extra or {}
    assert "llmos" in extra, f"no llmos field in {obj}"
    return extra["llmos"]


def agent_chat(messages, tools=None, llmos=None, **kw):
    body = {"llmos": llmos or {"tools": ["calculator"], "max_steps": 4}}
    extra = {"tools": tools} if tools else {}
    return CLIENT.chat.completions.create(
        model=ARGS.model, messages=messages, temperature=0, seed=1, extra_body=body, **extra, **kw
    )


def test_builtin_calculator_exact():
    r = agent_chat([{"role": "user", "content": "what is 2**200 / 7 exactly?"}])
    info = llmos_of(r)
    assert info["end"] == "final_answer", info
    assert r.choices[0].finish_reason == "stop", r
    calls = [e for e in info["events"] if e["type"] == "call"]
    results = [e for e in info["events"] if e["type"] == "result"]
    assert calls and calls[0]["name"] == "calculator" and calls[0]["runs_on"] == "server", info
    assert any(NUMERATOR in e["content"] and e["name"] == "calculator" for e in results), info
    answer = r.choices[0].message.content
    assert answer and answer.strip(), r
    # qwen2.5-coder-0.5b's final text does not always quote the value (greedy,
    # it writes "Marked approximate." here, exactly as `llmos agent` does);
    # the exact value reaches the client in the calculator's step above.
    if NUMERATOR not in answer.replace(",", ""):
        print(f"  note: the answer does not quote the exact value: {answer!r}")
    assert r.choices[0].message.tool_calls is None, r
    assert r.usage.completion_tokens == info["generated_tokens"] > 0, (r.usage, info)


def test_mixed_builtin_and_client_tool():
    messages = [
        {
            "role": "user",
            "content": "What is the weather in Paris? Use get_weather for that. Also compute 1234*5678 with the calculator.",
        }
    ]
    seen_calc = False
    weather_rounds = 0
    for _ in range(4):
        r = agent_chat(messages, tools=[WEATHER], llmos={"tools": ["calculator"], "max_steps": 4})
        info = llmos_of(r)
        seen_calc |= any(e["type"] == "result" and e["name"] == "calculator" and "7006652" in e["content"] for e in info["events"])
        msg = r.choices[0].message
        if info["end"] != "client_tool_calls":
            break
        assert r.choices[0].finish_reason == "tool_calls", r
        assert msg.tool_calls and all(c.function.name == "get_weather" for c in msg.tool_calls), msg
        # Built-in calls never reach the client.
        assert all(c.function.name != "calculator" for c in msg.tool_calls), msg
        weather_rounds += 1
        messages.append(msg.model_dump(exclude_none=True))
        for c in msg.tool_calls:
            city = json.loads(c.function.arguments).get("city", "?")
            messages.append({"role": "tool", "tool_call_id": c.id, "content": f"{city}: sunny, 21 degrees C"})
    assert weather_rounds >= 1, "the model never called get_weather"
    assert info["end"] == "final_answer", info
    assert r.choices[0].finish_reason == "stop"
    answer = msg.content or ""
    assert answer.strip(), r
    assert seen_calc, "the calculator never ran server-side"
    # The client's result reached the model as untrusted data and armed the guard.
    assert any(e["type"] == "guard" and e["tool"] == "get_weather" and "untrusted" in e["reason"] for e in info["events"]), info


def expect_400(body_llmos, contains, param=None, tools=None):
    try:
        agent_chat([{"role": "user", "content": "hi"}], tools=tools, llmos=body_llmos)
    except openai.BadRequestError as e:
        err = e.body if isinstance(e.body, dict) else {}
        msg = err.get("message", str(e))
        assert contains in msg, (contains, msg)
        if param:
            assert err.get("param") == param, err
        return
    raise AssertionError(f"accepted: {body_llmos}")


def test_errors():
    expect_400({"tools": ["teleport"]}, "not a built-in tool", "llmos.tools[0]")
    expect_400({"tools": ["calculator", "python"]}, "--no-python", "llmos.tools[1]")
    expect_400({"tools": ["files"]}, "--files DIR", "llmos.tools[0]")
    expect_400({"tools": ["browse"]}, "--browse HOST", "llmos.tools[0]")
    expect_400({"tools": []}, "empty", "llmos.tools")
    expect_400({"tools": ["calculator"], "max_steps": 0}, "between 1 and", "llmos.max_steps")
    expect_400({"tools": ["calculator"], "max_steps": "lots"}, "llmos.max_steps", "llmos.max_steps")
    expect_400({"tools": "calculator"}, "llmos.tools", "llmos.tools")
    expect_400({"tools": ["calculator"], "maxsteps": 3}, "maxsteps")
    expect_400({"tools": ["calculator"]}, "rename", "tools[0].function.name",
               tools=[{"type": "function", "function": {"name": "calculator", "parameters": {"type": "object"}}}])


def test_streaming_builtin_run():
    stream = CLIENT.chat.completions.create(
        model=ARGS.model,
        messages=[{"role": "user", "content": "what is 2**200 / 7 exactly?"}],
        temperature=0,
        seed=1,
        stream=True,
        stream_options={"include_usage": True},
        extra_body={"llmos": {"tools": ["calculator"], "max_steps": 4}},
    )
    content, events, finish, summary, usage = "", [], None, None, None
    for chunk in stream:
        extra = (chunk.model_extra or {}).get("llmos")
        if chunk.usage:
            usage = chunk.usage
        if not chunk.choices:
            continue
        c = chunk.choices[0]
        # Standard handling never breaks: every choice has a delta.
        if c.delta.content:
            content += c.delta.content
        if extra and "event" in extra:
            assert content == "", "a step after the answer began"
            events.append(extra["event"])
        if c.finish_reason:
            finish = c.finish_reason
            summary = extra
    assert finish == "stop", finish
    assert summary and summary["end"] == "final_answer", summary
    assert any(e["type"] == "call" and e["name"] == "calculator" for e in events), events
    assert any(e["type"] == "result" and NUMERATOR in e["content"] for e in events), events
    assert [e["step"] for e in events if e["type"] == "step"][0] == 1, events
    assert content.strip(), content
    assert usage and usage.completion_tokens == summary["generated_tokens"], (usage, summary)


def test_step_limit_says_so():
    r = agent_chat(
        [{"role": "user", "content": "Compute 3*7 with the calculator, then 21*11 with the calculator, then tell me both."}],
        llmos={"tools": ["calculator"], "max_steps": 1},
    )
    info = llmos_of(r)
    if info["end"] == "final_answer":
        return  # answered in one turn: nothing to check
    assert info["end"] == "max_steps", info
    assert r.choices[0].finish_reason == "length", r
    assert "llmos.max_steps = 1" in info["reason"], info


TESTS = [
    test_errors,
    test_builtin_calculator_exact,
    test_streaming_builtin_run,
    test_mixed_builtin_and_client_tool,
    test_step_limit_says_so,
]


def main():
    global ARGS, CLIENT
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("-k", help="run only tests whose name contains this")
    ARGS = p.parse_args()
    CLIENT = openai.OpenAI(base_url=ARGS.url, api_key="none", max_retries=0, timeout=300)
    run_tests(TESTS, ARGS.k)


if __name__ == "__main__":
    main()
