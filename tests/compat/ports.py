"""Python ports of the compat cases' node functions (the source of each case's functions.yaml).

PORTS maps a case name to {node key: script}. A node key is the node id in the case's
blueprint, `<subflow id>/<node id>` for a node of a subflow blueprint, or `@worker:<batch id>`
for a batch's worker function. `write_functions.py` turns these into functions.yaml keyed by the
`uses` names flowcraft's builder emitted. Each script defines `run(ctx)` the way the flowcraft
function is written: `await ctx.context.get/set(...)` for `context.get/set`, `ctx.input` for
`input`; `{"output": x, "action": a}` for flowcraft's NodeResult; raise where it throws.
Non-determinism is replaced exactly as in the generator (tests/compat/generator/cases*.mjs):
the fixed clock NOW, fixed Math.random() draws, `ctx.attempt` for process-wide attempt counters.
Sleeps are capped at 0.2 s.
"""

from __future__ import annotations

import textwrap

NOW = "2024-01-01T00:00:00.000Z"
NOW_MS = 1704067200000


def _s(body: str) -> str:
    """Dedent a script body written inside this module."""
    return textwrap.dedent(body).strip("\n") + "\n"


def _const(output: object, action: str | None = None) -> str:
    if action is None:
        return _s(f"def run(ctx):\n    return {{'output': {output!r}}}\n")
    return _s(f"def run(ctx):\n    return {{'output': {output!r}, 'action': {action!r}}}\n")


def _mock_api(name: str, delay: float, fail: bool = False) -> str:
    """The docs demos' mockApiCall(name, delay, shouldFail)."""
    if fail:
        last = f"raise RuntimeError('API call \"{name}\" failed.')"
    else:
        last = f'return {{"output": {{"data": "Data from {name}"}}}}'
    return (
        f"import asyncio\n\n\nasync def run(ctx):\n    await asyncio.sleep({delay})\n    {last}\n"
    )


PORTS: dict[str, dict[str, str]] = {
    # ------------------------------------------------------------------ docs demos
    "demo-basic": {
        "step-a": _mock_api("Step A", 0.2),
        "step-b": _mock_api("Step B", 0.2),
        "step-c": _mock_api("Step C", 0.2),
    },
    "demo-batch": {
        "start": _s("""
            import asyncio

            async def run(ctx):
                await asyncio.sleep(0.2)
                return {"output": [10, 20, 30]}
            """),
        "@worker:double-items": _s("""
            import asyncio

            async def run(ctx):
                await asyncio.sleep(0.2)
                return {"output": ctx.input * 2}
            """),
        "sum-results": _s("""
            import asyncio

            async def run(ctx):
                await asyncio.sleep(0.2)
                return {"output": sum(ctx.input)}
            """),
    },
    "demo-declarative": {
        "take-order": _s("""
            import asyncio

            async def run(ctx):
                await asyncio.sleep(0.2)
                return {"output": {"item": "Coffee", "size": "Medium"}}
            """),
        "make-drink": _s("""
            import asyncio

            async def run(ctx):
                await asyncio.sleep(0.2)
                return {"output": f"Made {ctx.input['size']} {ctx.input['item']}"}
            """),
        "serve-customer": _s("""
            import asyncio

            async def run(ctx):
                await asyncio.sleep(0.2)
                return {"output": f"Served: {ctx.input}"}
            """),
    },
    "demo-fallback": {
        "start-error": _const("start"),
        "failing-node": _mock_api("Failing", 0.2, fail=True),
        "fallback-node": _mock_api("Fallback", 0.2),
        "final-step": _const("Workflow finished"),
    },
    "demo-getting-started": {
        "start": _s("""
            import asyncio

            async def run(ctx):
                await asyncio.sleep(0.2)
                return {"output": await ctx.context.get("value")}
            """),
        "double": _s("""
            import asyncio

            async def run(ctx):
                await asyncio.sleep(0.2)
                return {"output": ctx.input * 2}
            """),
    },
    "demo-hitl": {
        "start-approval": _const({"user": "Alice", "amount": 1500}),
        "process-decision": _s("""
            def run(ctx):
                if isinstance(ctx.input, dict) and ctx.input.get("approved"):
                    return {"output": "Request was approved."}
                return {"output": "Request was denied."}
            """),
    },
    "demo-intro": {
        "fetch-report": _s("""
            import asyncio

            async def run(ctx):
                await asyncio.sleep(0.2)
                await ctx.context.set("reportId", "EXP-001")
                await ctx.context.set("employee", "Alice")
                return {"output": [
                    {"amount": 45, "type": "meals", "receipt": "receipt-1.jpg"},
                    {"amount": 120, "type": "travel", "receipt": "receipt-2.jpg"},
                    {"amount": 1500, "type": "equipment", "receipt": "receipt-3.jpg"},
                ]}
            """),
        "@worker:validate-items": _s("""
            import asyncio

            async def run(ctx):
                await asyncio.sleep(0.2)
                item = ctx.input
                ocr = 0.7 if item["amount"] > 1000 else 0.95
                return {"output": {**item, "ocrConfidence": ocr, "status": "validated"}}
            """),
        "compute-total": _s("""
            import asyncio

            async def run(ctx):
                await asyncio.sleep(0.2)
                total = sum(i["amount"] for i in ctx.input)
                min_conf = min(i["ocrConfidence"] for i in ctx.input)
                await ctx.context.set("total", total)
                await ctx.context.set("minConfidence", min_conf)
                await ctx.context.set("ocrAttempts", 0)
                return {"output": {"total": total, "minConfidence": min_conf}}
            """),
        "enhance-ocr": _s("""
            import asyncio

            async def run(ctx):
                await asyncio.sleep(0.2)
                attempts = (await ctx.context.get("ocrAttempts")) or 0
                current = (await ctx.context.get("minConfidence")) or 0
                new_attempts = attempts + 1
                improved = min(0.95, current + 0.1 * new_attempts)
                await ctx.context.set("minConfidence", improved)
                await ctx.context.set("ocrAttempts", new_attempts)
                return {"output": {"minConfidence": improved, "ocrAttempts": new_attempts}}
            """),
        "route-by-total": _s("""
            import asyncio

            async def run(ctx):
                await asyncio.sleep(0.2)
                total = (await ctx.context.get("total")) or 0
                return {"output": {"total": total}}
            """),
        "auto-approve": _const({"status": "approved", "method": "auto"}),
        "auto-reject": _const({"status": "rejected", "reason": "Exceeds single-report limit"}),
        "send-notification": _s("""
            import asyncio

            async def run(ctx):
                await asyncio.sleep(0.2)
                # `${input.status}` of a resume payload without status: "undefined".
                status = ctx.input.get("status", "undefined")
                return {"output": {"message": f"Notification sent: {status}"}}
            """),
    },
    "demo-loop": {
        "initialize": _s("""
            async def run(ctx):
                await ctx.context.set("count", 0)
                return {"output": "Initialized"}
            """),
        "increment": _s("""
            import asyncio

            async def run(ctx):
                current = (await ctx.context.get("count")) or 0
                new = current + 1
                await asyncio.sleep(0.2)
                await ctx.context.set("count", new)
                return {"output": new}
            """),
        "finalize": _const("Finalized"),
    },
    "demo-parallel": {
        "start-parallel": _const("start"),
        "task-1": _mock_api("Task 1", 0.2),
        "task-2": _mock_api("Task 2", 0.05),
        "task-3": _mock_api("Task 3", 0.1),
        "gather": _s("""
            async def run(ctx):
                t1 = await ctx.context.get("_outputs.task-1")
                t2 = await ctx.context.get("_outputs.task-2")
                t3 = await ctx.context.get("_outputs.task-3")
                return {"output": {"t1": t1, "t2": t2, "t3": t3}}
            """),
    },
    "demo-programmatic": {
        "fetch-user": _s("""
            import asyncio

            async def run(ctx):
                user = {"id": 1, "name": "Alice"}
                await ctx.context.set("user_data", user)
                await asyncio.sleep(0.2)
                return {"output": user}
            """),
        "validate-user": _s("""
            import asyncio

            async def run(ctx):
                is_valid = ctx.input["name"] == "Alice"
                await ctx.context.set("validation_result", is_valid)
                await asyncio.sleep(0.2)
                return {"output": is_valid, "action": "valid" if is_valid else "invalid"}
            """),
        "process-valid": _s("""
            import asyncio

            async def run(ctx):
                user = await ctx.context.get("user_data")
                await ctx.context.set("processing_status", "completed")
                await asyncio.sleep(0.2)
                name = user.get("name") if isinstance(user, dict) else None
                return {"output": f"Processed user {'undefined' if name is None else name}"}
            """),
        "handle-invalid": _s("""
            import asyncio

            async def run(ctx):
                await ctx.context.set("processing_status", "failed")
                await asyncio.sleep(0.2)
                return {"output": "Invalid user data"}
            """),
    },
    "demo-retry": {
        "start-retries": _const("start"),
        "flaky-node": _s("""
            import asyncio

            async def run(ctx):
                # flowcraft's demo counts calls in a module variable: calls 1 and 2 fail.
                await asyncio.sleep(0.2)
                if ctx.attempt <= 2:
                    raise RuntimeError('API call "Flaky" failed.')
                return {"output": {"data": "Data from Flaky"}}
            """),
        "final-step": _const("Workflow finished"),
    },
    "demo-visualization": {
        "fetch": _const({"value": 10}),
        "check": _s("""
            def run(ctx):
                # flowcraft: returns {action} only, so the output is undefined.
                return {"output": None, "action": "big" if ctx.input["value"] > 5 else "small"}
            """),
        "process-big": _const(None),
        "process-small": _const(None),
    },
    # ------------------------------------------------------------------ guide pages
    "guide-getting-started": {
        "start": _s("""
            async def run(ctx):
                return {"output": await ctx.context.get("value")}
            """),
        "double": _s("""
            def run(ctx):
                return {"output": ctx.input * 2}
            """),
    },
    "guide-core-concepts-state": {
        "initial_data": _const({"value": 100}),
        "process_data": _s("""
            async def run(ctx):
                data = await ctx.context.get("initial_data")
                return {"output": data["value"] * 2}
            """),
    },
    "guide-core-concepts-stateful": {
        "step1": _s("""
            async def run(ctx):
                await ctx.context.set("count", 1)
                await ctx.context.set("history", ["Step 1 started"])
                return {"output": "Step 1 complete"}
            """),
        "step2": _s("""
            async def run(ctx):
                current = (await ctx.context.get("count")) or 0
                history = (await ctx.context.get("history")) or []
                new = current + 1
                await ctx.context.set("count", new)
                await ctx.context.set("history", [*history, f"Step 2: count is now {new}"])
                return {"output": "Step 2 complete"}
            """),
    },
    "guide-core-concepts-cancellable": {
        "task1": _s("""
            import asyncio

            async def run(ctx):
                await asyncio.sleep(0.2)
                return {"output": "Task 1 complete"}
            """),
        "task2": _const("Task 2 complete"),
    },
    "guide-core-concepts-approval": {
        "prepare": _const({"item": "document.pdf"}),
        "process": _s("""
            def run(ctx):
                if isinstance(ctx.input, dict) and ctx.input.get("approved"):
                    return {"output": "Document approved and processed"}
                return {"output": "Document rejected"}
            """),
    },
    "guide-core-concepts-delayed": {
        "start": _const("Starting delayed task"),
        "finish": _const("Task completed after delay"),
    },
    "guide-error-handling-retry": {
        "risky-operation": _s("""
            def run(ctx):
                # flowcraft's snippet counts attempts in a module variable.
                if ctx.attempt < 3:
                    raise RuntimeError("Temporary failure!")
                return {"output": "Succeeded on attempt 3"}
            """),
    },
    "guide-error-handling-fallback": {
        "primary-api": _s("""
            def run(ctx):
                raise RuntimeError("Primary API is down")
            """),
        "secondary-api": _const("Data from secondary API"),
        "process-data": _s("""
            def run(ctx):
                value = "undefined" if ctx.input is None else ctx.input
                return {"output": f"Processed: {value}"}
            """),
    },
    "guide-batches": {
        "start": _const([10, 20, 30]),
        "@worker:double-items": _s("""
            def run(ctx):
                return {"output": ctx.input * 2}
            """),
        "sum-results": _s("""
            def run(ctx):
                return {"output": sum(ctx.input)}
            """),
    },
    "guide-loops-counter": {
        "initialize": _s("""
            async def run(ctx):
                await ctx.context.set("count", 0)
                return {"output": "Initialized"}
            """),
        "increment": _s("""
            async def run(ctx):
                new = ((await ctx.context.get("count")) or 0) + 1
                await ctx.context.set("count", new)
                return {"output": new}
            """),
    },
    "guide-loops-conditional": {
        "process": _s("""
            async def run(ctx):
                items = list((await ctx.context.get("items")) or [])
                if items:
                    items.pop(0)
                await ctx.context.set("items", items)
                return {"output": None}  # flowcraft: returns {item}, not {output}
            """),
        "check": _s("""
            async def run(ctx):
                return {"output": None}  # flowcraft: returns {shouldContinue}, not {output}
            """),
        "done": _const("Completed"),
    },
    "guide-subflows-math": {
        "prepare-data": _s("""
            async def run(ctx):
                await ctx.context.set("val1", 10)
                await ctx.context.set("val2", 20)
                return {"output": "Data ready"}
            """),
        "math-subflow/add": _s("""
            async def run(ctx):
                a = await ctx.context.get("a")
                b = await ctx.context.get("b")
                return {"output": a + b}
            """),
    },
    "guide-hitl-approval": {
        "start": _const({"user": "Alice", "amount": 1500}),
        "process": _s("""
            def run(ctx):
                if isinstance(ctx.input, dict) and ctx.input.get("approved"):
                    return {"output": "Approved"}
                return {"output": "Denied"}
            """),
    },
    "guide-pausing-expense-approval": {
        "submit": _s("""
            async def run(ctx):
                await ctx.context.set("request", {"user": "Alice", "amount": 1500})
                return {"output": "Expense submitted"}
            """),
        "process": _s("""
            async def run(ctx):
                approval = await ctx.context.get("approval")
                if isinstance(approval, dict) and approval.get("approved"):
                    return {"output": "Expense approved and processed"}
                return {"output": "Expense rejected"}
            """),
    },
}


_JS_NUM = """
def js_num(x):
    # JavaScript prints integral numbers without a fraction (15, not 15.0).
    if isinstance(x, float) and x.is_integer():
        return str(int(x))
    return str(x)
"""


def _sets(output: str, **values: object) -> str:
    """A node that only sets context keys and returns a constant output."""
    lines = [f"    await ctx.context.set({k!r}, {v!r})" for k, v in values.items()]
    lines.append(f"    return {{'output': {output!r}}}")
    return "async def run(ctx):\n" + "\n".join(lines) + "\n"


_FAIL = "def run(ctx):\n    raise RuntimeError({msg!r})\n"

_LOOP_DONE = _const("Done")

EXAMPLE_PORTS: dict[str, dict[str, str]] = {
    "ex-hitl-workflow": {
        "prepareTask": _s("""
            async def run(ctx):
                await ctx.context.set("task", {
                    "id": "task_123",
                    "description": "Process customer refund request",
                    "amount": 99.99,
                    "reason": "Product defect",
                })
                await ctx.context.set("status", "prepared")
                return {"output": "Task prepared"}
            """),
        "humanReview": _s(f"""
            async def run(ctx):
                task = await ctx.context.get("task")
                if not task:
                    raise RuntimeError("Invalid task")
                approved = True  # the example asks on the terminal; the case answers "y"
                await ctx.context.set("approved", approved)
                await ctx.context.set("reviewer", "interactive.user@terminal")
                await ctx.context.set("reviewTimestamp", {NOW!r})
                return {{"output": "Approved" if approved else "Rejected"}}
            """),
        "executeApprovedTask": _s(f"""
            async def run(ctx):
                task = await ctx.context.get("task")
                if not task:
                    raise RuntimeError("Invalid task")
                if not await ctx.context.get("approved"):
                    raise RuntimeError("Task not approved")
                await ctx.context.set("executed", True)
                await ctx.context.set("executionTimestamp", {NOW!r})
                return {{"output": "Task executed"}}
            """),
        "handleRejection": _s("""
            async def run(ctx):
                task = await ctx.context.get("task")
                if not task:
                    raise RuntimeError("Invalid task")
                await ctx.context.set("handled", True)
                return {"output": "Rejection handled"}
            """),
    },
    "ex-loops-simple-loop": {
        "initialize": _sets(0, counter=0, maxIterations=5),
        "increment": _s("""
            async def run(ctx):
                count = await ctx.context.get("counter")
                new = (0 if count is None else count) + 1
                await ctx.context.set("counter", new)
                return {"output": new}
            """),
        "done": _LOOP_DONE,
    },
    "ex-loops-multi-node-loop": {
        "prepare": _s("""
            async def run(ctx):
                items = ["task-1", "task-2", "task-3"]
                await ctx.context.set("items", items)
                await ctx.context.set("processedItems", [])
                await ctx.context.set("counter", 0)
                return {"output": items}
            """),
        "process": _s("""
            async def run(ctx):
                items = await ctx.context.get("items") or []
                item = items[0] if items else None
                count = await ctx.context.get("counter")
                await ctx.context.set("counter", (0 if count is None else count) + 1)
                return {"output": item}
            """),
        "markComplete": _s("""
            async def run(ctx):
                processed = list(await ctx.context.get("processedItems") or [])
                items = list(await ctx.context.get("items") or [])
                item = items.pop(0) if items else None
                if item:
                    processed.append(item)
                await ctx.context.set("items", items)
                await ctx.context.set("processedItems", processed)
                return {"output": item}
            """),
        "done": _LOOP_DONE,
    },
    "ex-loops-subflow": {
        "prepare": _s("""
            async def run(ctx):
                items = ["task-1", "task-2", "task-3"]
                await ctx.context.set("items", items)
                await ctx.context.set("processedItems", [])
                await ctx.context.set("counter", 0)
                return {"output": items}
            """),
        "processing-pipeline/validate": _s("""
            async def run(ctx):
                data = await ctx.context.get("inputData")
                return {"output": {"valid": True, "data": data}}
            """),
        "processing-pipeline/enrich": _s("""
            def run(ctx):
                return {"output": {**ctx.input, "enriched": True}}
            """),
        "done": _LOOP_DONE,
    },
    "ex-loops-retry-loop": {
        "attempt": _s("""
            async def run(ctx):
                count = await ctx.context.get("counter")
                count = 0 if count is None else count
                await ctx.context.set("counter", count + 1)
                success = count + 1 >= 3
                await ctx.context.set("success", success)
                return {"output": {"attempt": count + 1, "success": success}}
            """),
        "success": _const("completed"),
    },
    "ex-basic-workflow-execution": {
        "validateUser": _s("""
            async def run(ctx):
                user = await ctx.context.get("user")
                if not (user or {}).get("name"):
                    raise RuntimeError("Invalid user: missing name")
                return {"output": "User validated successfully"}
            """),
        "processUser": _s(f"""
            async def run(ctx):
                user = await ctx.context.get("user")
                processed = {{**(user or {{}}), "processedAt": {NOW!r}, "status": "processed"}}
                await ctx.context.set("processedUser", processed)
                return {{"output": f"Processed user: {{user['name']}}"}}
            """),
        "sendNotification": _s("""
            async def run(ctx):
                await ctx.context.get("processedUser")
                return {"output": "Notification sent successfully"}
            """),
    },
    "ex-built-in-batch": {
        "prepareData": _s("""
            async def run(ctx):
                items = [
                    {"id": 1, "name": "Item A", "value": 10},
                    {"id": 2, "name": "Item B", "value": 20},
                    {"id": 3, "name": "Item C", "value": 30},
                    {"id": 4, "name": "Item D", "value": 40},
                    {"id": 5, "name": "Item E", "value": 50},
                ]
                await ctx.context.set("batchItems", items)
                return {"output": f"Prepared {len(items)} items"}
            """),
        "@worker:processItems": _s(f"""
            def run(ctx):
                item = ctx.input
                if not item:
                    raise RuntimeError("Invalid input")
                return {{"output": {{
                    **item,
                    "processed": True,
                    "processedAt": {NOW!r},
                    "status": "high-value" if item["value"] > 25 else "standard",
                    "metadata": {{
                        "processor": "batch-processor-v1",
                        "quality": "premium" if item["value"] > 35 else "standard",
                    }},
                }}}}
            """),
        "aggregateResults": _s(f"""
            async def run(ctx):
                results = ctx.input
                stats = {{
                    "totalItems": len(results),
                    "highValueItems": len([i for i in results if i["status"] == "high-value"]),
                    "totalValue": sum(i["value"] for i in results),
                    "premiumItems": len(
                        [i for i in results if i["metadata"]["quality"] == "premium"]
                    ),
                    "processingTime": {NOW!r},
                }}
                await ctx.context.set("batchStats", stats)
                await ctx.context.set("processedItems", results)
                return {{"output": f"Processed {{stats['totalItems']}} items"}}
            """),
    },
    "ex-built-in-loop": {
        "setupLoop": _s(f"""
            async def run(ctx):
                loop_data = {{
                    "counter": 0, "maxIterations": 5, "results": [], "startTime": {NOW!r}
                }}
                await ctx.context.set("loopData", loop_data)
                return {{"output": "Loop data ready"}}
            """),
        "executeIteration": _s(f"""
            async def run(ctx):
                loop_data = await ctx.context.get("loopData")
                if not loop_data:
                    raise RuntimeError("Invalid loop data")
                n = loop_data["counter"] + 1
                updated = {{
                    **loop_data,
                    "counter": n,
                    "results": [*loop_data["results"], f"Iteration {{n}} at {NOW}"],
                }}
                await ctx.context.set("loopData", updated)
                return {{
                    "output": f"Iteration {{n}} complete",
                    "action": "break" if n >= loop_data["maxIterations"] else "continue",
                }}
            """),
        "processResults": _s(f"""
            async def run(ctx):
                loop_data = await ctx.context.get("loopData")
                if not loop_data:
                    raise RuntimeError("Invalid loop data")
                await ctx.context.set("loopSummary", {{
                    "totalIterations": loop_data["counter"],
                    "duration": {NOW!r},
                    "allResults": loop_data["results"],
                }})
                return {{"output": f"Loop completed with {{loop_data['counter']}} iterations"}}
            """),
    },
    "ex-built-in-wait": {
        "startWait": _sets("Wait sequence initiated", waitStart=NOW),
        "wait5Seconds": _s("""
            import asyncio

            async def run(ctx):
                await asyncio.sleep(0.2)
                return {"output": "waited"}
            """),
        "processAfterWait": _s(f"""
            async def run(ctx):
                wait_start = await ctx.context.get("waitStart")
                duration = 0  # fixed clock: end - start
                await ctx.context.set("waitResults", {{
                    "startTime": wait_start,
                    "endTime": {NOW!r},
                    "durationMs": duration,
                }})
                return {{"output": f"Waited for {{duration}}ms"}}
            """),
    },
    "ex-built-in-subflow": {
        "startMain": _sets(
            "Main workflow started", mainWorkflowData={"startedAt": NOW, "subflows": []}
        ),
        "validation-subflow/validate": _s("""
            async def run(ctx):
                data = await ctx.context.get("inputData")
                if not (data or {}).get("name"):
                    raise RuntimeError("Invalid input: missing name")
                fields = [data.get("name"), data.get("email"), data.get("age")]
                return {"output": {
                    "hasName": bool(data.get("name")),
                    "hasEmail": bool(data.get("email")),
                    "hasAge": bool(data.get("age")),
                    "score": len([f for f in fields if f]),
                }}
            """),
        "enrichment-subflow/enrich": _s(f"""
            async def run(ctx):
                data = await ctx.context.get("inputData")
                age = data["age"]
                return {{"output": {{
                    **data,
                    "metadata": {{
                        "processedAt": {NOW!r}, "version": "1.0", "source": "enrichment-subflow"
                    }},
                    "insights": {{
                        "ageGroup": "young" if age < 25 else "adult" if age < 50 else "senior",
                        "nameLength": len(data["name"]),
                        "emailDomain": data["email"].split("@")[1],
                        "processed": True,
                    }},
                }}}}
            """),
        "processResults": _s(f"""
            async def run(ctx):
                validation = await ctx.context.get("validationResults")
                enriched = await ctx.context.get("enrichedData")
                await ctx.context.set("finalResult", {{
                    "originalData": await ctx.context.get("inputData"),
                    "validation": validation,
                    "enriched": enriched,
                    "completedAt": {NOW!r},
                }})
                return {{"output": "All subflows completed"}}
            """),
    },
    "ex-context-basic": {
        "readData": _s("""
            async def run(ctx):
                await ctx.context.set("workflowData", await ctx.context.get("input"))
                return {"output": "Data read successfully"}
            """),
        "checkData": _s("""
            async def run(ctx):
                if await ctx.context.get("existingData"):
                    await ctx.context.set("dataSource", "existing")
                    return {"output": "Using existing data"}
                await ctx.context.set("dataSource", "new")
                return {"output": "Need to initialize data"}
            """),
        "transformData": _s(f"""
            async def run(ctx):
                workflow_data = await ctx.context.get("workflowData")
                source = await ctx.context.get("dataSource")
                await ctx.context.set("transformedData", {{
                    **(workflow_data or {{}}),
                    "source": source,
                    "transformedAt": {NOW!r},
                    "processed": True,
                    "metadata": {{
                        "version": "1.0", "transformer": "context-state-management-example"
                    }},
                }})
                return {{"output": f"Transformed data from {{source}}"}}
            """),
        "accumulateResults": _s(f"""
            async def run(ctx):
                workflow_data = await ctx.context.get("workflowData")
                transformed = await ctx.context.get("transformedData")
                source = await ctx.context.get("dataSource")
                await ctx.context.set("finalResult", {{
                    "original": workflow_data,
                    "transformed": transformed,
                    "source": source,
                    "accumulatedAt": {NOW!r},
                    "steps": ["read", "check", "transform", "accumulate"],
                    "summary": {{"totalSteps": 4, "dataProcessed": True, "sourceType": source}},
                }})
                return {{"output": "Results accumulated successfully"}}
            """),
        "finalizeContext": _s("""
            async def run(ctx):
                final = await ctx.context.get("finalResult")
                clean = {
                    "id": final["original"]["id"],
                    "name": final["original"]["name"],
                    "status": "completed",
                    "processedAt": final["accumulatedAt"],
                    "source": final["source"],
                    "stepsCompleted": len(final["steps"]),
                }
                await ctx.context.set("intermediateData", None)
                await ctx.context.set("cleanOutput", clean)
                return {"output": "Context finalized"}
            """),
    },
    "ex-context-advanced": {
        "createNested": _sets(
            "Nested structure created",
            nestedData={
                "user": {
                    "profile": {
                        "basic": {"name": "John", "email": "john@example.com"},
                        "preferences": {"theme": "dark", "notifications": True},
                    },
                    "activity": {"lastLogin": NOW, "sessionCount": 5},
                },
                "system": {"version": "1.0.0", "environment": "development"},
            },
        ),
        "queryNested": _s(f"""
            async def run(ctx):
                nested = await ctx.context.get("nestedData")
                results = {{
                    "userName": nested["user"]["profile"]["basic"]["name"],
                    "userTheme": nested["user"]["profile"]["preferences"]["theme"],
                    "systemVersion": nested["system"]["version"],
                    "queryTimestamp": {NOW!r},
                    "accessedPaths": [
                        "nestedData.user.profile.basic.name",
                        "nestedData.user.profile.preferences.theme",
                        "nestedData.system.version",
                    ],
                }}
                await ctx.context.set("queryResults", results)
                return {{"output": f"Queried {{len(results['accessedPaths'])}} data paths"}}
            """),
    },
    "ex-edge-transform-property": {
        "fetchAndValidate": _s("""
            async def run(ctx):
                order = await ctx.context.get("rawOrder")
                return {"output": {
                    "id": order["id"],
                    "customer": order["customer"],
                    "shipping": {
                        "address": order["shipping"]["address"],
                        "method": order["shipping"]["method"],
                    },
                }}
            """),
        "notifyWarehouse": _s("""
            def run(ctx):
                return {"output": ctx.input}
            """),
    },
    "ex-edge-transform-explicit-inputs": {
        "enrichOrder": _s("""
            async def run(ctx):
                order = await ctx.context.get("rawOrder")
                return {"output": {**order, "customerTier": "gold", "loyaltyDiscount": 0.15}}
            """),
        "parseOrder": _const("Order parsed"),
        "applyPricing": _JS_NUM.lstrip("\n")
        + "\n\n"
        + _s("""
            async def run(ctx):
                discount = await ctx.context.get("_inputs.applyPricing")
                return {"output": f"{js_num(discount * 100)}% discount applied"}
            """),
    },
    "ex-function-class-nodes": {
        "validateEmail": _s("""
            import re

            async def run(ctx):
                user = await ctx.context.get("user")
                email = (user or {}).get("email")
                if not email or not re.fullmatch(r"[^\\s@]+@[^\\s@]+\\.[^\\s@]+", email):
                    raise RuntimeError(f"Invalid email format: {email}")
                return {"output": "Email validated"}
            """),
        "calculateUserScore": _s("""
            async def run(ctx):
                user = await ctx.context.get("user") or {}
                score = 0
                if user.get("name"):
                    score += 10
                if user.get("email"):
                    score += 15
                if user.get("age") and user["age"] >= 18:
                    score += 20
                if user.get("preferences"):
                    score += 5
                score = min(score, 100)
                await ctx.context.set("userScore", score)
                return {"output": f"Score: {score}"}
            """),
        "enrichProfile": _s("""
            async def run(ctx):
                user = await ctx.context.get("user")
                score = await ctx.context.get("userScore")
                level = "Premium" if score >= 80 else "Standard" if score >= 50 else "Basic"
                badges = []
                if score >= 80:
                    badges.append("Top Scorer")
                if user["age"] >= 25:
                    badges.append("Experienced")
                if "tech" in (user.get("preferences") or []):
                    badges.append("Tech Enthusiast")
                enriched = {**user, "score": score, "level": level, "badges": badges}
                await ctx.context.set("enrichedUser", enriched)
                return {"output": f"Enriched profile: {level} level"}
            """),
        "sendNotifications": _s("""
            async def run(ctx):
                user = await ctx.context.get("enrichedUser")
                sent = [f"Welcome: Welcome {user['name']}! You're a {user['level']} member."]
                if user["badges"]:
                    sent.append(f"Badges: You've earned badges: {', '.join(user['badges'])}")
                await ctx.context.set("notificationsSent", len(sent))
                return {"output": f"Sent {len(sent)} notifications"}
            """),
    },
    "ex-custom-logging-basic": {
        "prepareData": _sets("Data prepared", data={"items": [1, 2, 3]}),
        "processData": _s("""
            import asyncio

            async def run(ctx):
                data = await ctx.context.get("data")
                await asyncio.sleep(0.01)
                await ctx.context.set("processedData", [i * 2 for i in data["items"]])
                return {"output": "Data processed"}
            """),
        "finalize": _s("""
            async def run(ctx):
                await ctx.context.get("processedData")
                return {"output": "Workflow finalized"}
            """),
    },
    "ex-custom-logging-error": {
        "failingNode": _FAIL.format(msg="Simulated error"),
    },
    "ex-db-transactions-success": {
        "beginTransaction": _sets("Transaction begun", transactionId=f"txn_{NOW_MS}"),
        "insertUser": _s("""
            import asyncio

            async def run(ctx):
                await ctx.context.get("transactionId")
                await asyncio.sleep(0.005)
                await ctx.context.set("userId", 123)
                return {"output": "User inserted"}
            """),
        "updateUser": _s("""
            import asyncio

            async def run(ctx):
                await ctx.context.get("transactionId")
                await ctx.context.get("userId")
                await asyncio.sleep(0.005)
                await ctx.context.set("userUpdated", True)
                return {"output": "User updated"}
            """),
        "commitTransaction": _s("""
            import asyncio

            async def run(ctx):
                await ctx.context.get("transactionId")
                await asyncio.sleep(0.002)
                return {"output": "Transaction committed"}
            """),
    },
    "ex-db-transactions-failing": {
        "beginTransaction": _sets("Transaction begun", transactionId=f"txn_{NOW_MS}"),
        "insertUser": _s("""
            import asyncio

            async def run(ctx):
                await ctx.context.get("transactionId")
                await asyncio.sleep(0.005)
                await ctx.context.set("userId", 123)
                return {"output": "User inserted"}
            """),
        "failingOperation": _FAIL.format(msg="Database constraint violation"),
    },
    "ex-performance-tuning": {
        "loadData": _s("""
            import asyncio

            async def run(ctx):
                await asyncio.sleep(0.1)
                data = {"records": [{"id": i, "value": 0.5} for i in range(20)]}
                await ctx.context.set("data", data)
                return {"output": "Data loaded"}
            """),
        "processBatch": _s("""
            import asyncio

            async def run(ctx):
                data = await ctx.context.get("data")
                processed = [{**r, "processedValue": r["value"] * 2} for r in data["records"]]
                await asyncio.sleep(0.05)
                await ctx.context.set("processedData", processed)
                return {"output": "Batch processed"}
            """),
        "validateResults": _s("""
            import asyncio

            async def run(ctx):
                processed = await ctx.context.get("processedData")
                if not all(r["processedValue"] > 0 for r in processed or []):
                    raise RuntimeError("Validation failed")
                await asyncio.sleep(0.02)
                await ctx.context.set("validated", True)
                return {"output": "Results validated"}
            """),
        "generateReport": _s(f"""
            import asyncio

            async def run(ctx):
                processed = await ctx.context.get("processedData")
                if not processed:
                    raise RuntimeError("Invalid processed data")
                report = {{
                    "totalRecords": len(processed),
                    "averageValue": sum(r["processedValue"] for r in processed) / len(processed),
                    "timestamp": {NOW!r},
                }}
                await asyncio.sleep(0.03)
                await ctx.context.set("report", report)
                return {{"output": "Report generated"}}
            """),
    },
    "ex-error-handling-retry": {
        "unstableOperation": _sets("Operation completed", operationDone=True),
    },
    "ex-error-handling-recovery": {
        "criticalOperation": _FAIL.format(msg="Critical system error"),
        "recoveryOperation": _sets("Recovery completed", recovered=True),
    },
    "ex-fallback-cascading": {
        "primaryService": _FAIL.format(msg="Primary service unavailable"),
        "secondaryService": _s("""
            import asyncio

            async def run(ctx):
                await asyncio.sleep(0.2)
                await ctx.context.set("serviceUsed", "secondary")
                await ctx.context.set("response", "Secondary service data")
                return {"output": "Secondary service called"}
            """),
        "tertiaryService": _s("""
            import asyncio

            async def run(ctx):
                await asyncio.sleep(0.2)
                await ctx.context.set("serviceUsed", "tertiary")
                await ctx.context.set("response", "Tertiary service data")
                return {"output": "Tertiary service called"}
            """),
        "processResponse": _s("""
            async def run(ctx):
                await ctx.context.get("serviceUsed")
                await ctx.context.get("response")
                await ctx.context.set("processed", True)
                return {"output": "Response processed"}
            """),
    },
    "ex-fallback-parallel": {
        "primaryService": _FAIL.format(msg="Primary service unavailable"),
        "secondaryService": _s("""
            import asyncio

            async def run(ctx):
                await asyncio.sleep(0.2)
                await ctx.context.set("serviceUsed", "secondary")
                await ctx.context.set("response", "Secondary service data")
                return {"output": "Secondary service called"}
            """),
        "processResponse": _s("""
            async def run(ctx):
                await ctx.context.get("serviceUsed")
                await ctx.context.get("response")
                await ctx.context.set("processed", True)
                return {"output": "Response processed"}
            """),
    },
    "ex-retry-fixed-delay": {
        "unreliableOperation": _sets("Operation completed", operationResult="success"),
    },
    "ex-retry-exponential-backoff": {
        "criticalTask": _FAIL.format(msg="Critical system failure"),
    },
    "ex-retry-circuit-breaker": {
        "unreliableOperation": _sets("Operation completed", operationResult="success"),
        "backupOperation": _sets("Backup operation completed", backupResult="success"),
    },
    "ex-interactive-debugging": {
        "initializeDebug": _sets("Debug initialized", debugMode=True, stepCount=0),
        "processStep": _s("""
            async def run(ctx):
                n = (await ctx.context.get("stepCount")) or 0
                await ctx.context.set("stepCount", n + 1)
                await ctx.context.set("currentStep", f"step_{n + 1}")
                return {"output": f"Step {n + 1} processed"}
            """),
        "checkCondition": _s("""
            async def run(ctx):
                n = (await ctx.context.get("stepCount")) or 0
                go_on = n < 3
                await ctx.context.set("shouldContinue", go_on)
                return {"output": "Continue" if go_on else "Stop"}
            """),
        "finalizeDebug": _s("""
            async def run(ctx):
                n = (await ctx.context.get("stepCount")) or 0
                await ctx.context.set("finalStepCount", n)
                return {"output": "Debug finalized"}
            """),
    },
    "ex-static-analysis-diagrams": {
        "analyzeStructure": _s("""
            async def run(ctx):
                wf = await ctx.context.get("workflow")
                nodes, edges = wf["nodes"], wf["edges"]
                ends = {e["source"] for e in edges} | {e["target"] for e in edges}
                isolated = [
                    n for n in nodes
                    if not any(e["source"] == n["id"] or e["target"] == n["id"] for e in edges)
                ]
                await ctx.context.set("analysis", {
                    "nodes": len(nodes),
                    "edges": len(edges),
                    "connectedNodes": len(ends),
                    "isolatedNodes": len(isolated),
                })
                return {"output": "Structure analyzed"}
            """),
        "generateDiagram": _s("""
            async def run(ctx):
                wf = await ctx.context.get("workflow")
                a = await ctx.context.get("analysis")
                d = f"Workflow: {wf['id']}\\n" + "=" * 40 + "\\n\\n"
                for i, node in enumerate(wf["nodes"]):
                    d += f"{i + 1}. {node['id']}\\n"
                d += "\\nConnections:\\n"
                for e in wf["edges"]:
                    d += f"  {e['source']} --> {e['target']}\\n"
                d += "\\nStatistics:\\n"
                d += f"  Total nodes: {a['nodes']}\\n"
                d += f"  Total edges: {a['edges']}\\n"
                d += f"  Connected nodes: {a['connectedNodes']}\\n"
                d += f"  Isolated nodes: {a['isolatedNodes']}\\n"
                await ctx.context.set("diagram", d)
                return {"output": "Diagram generated"}
            """),
        "validateDiagram": _s("""
            async def run(ctx):
                diagram = await ctx.context.get("diagram")
                if not diagram or len(diagram) < 10:
                    raise RuntimeError("Invalid diagram generated")
                await ctx.context.set("diagramValid", True)
                return {"output": "Diagram validated"}
            """),
    },
}

PORTS.update(EXAMPLE_PORTS)
