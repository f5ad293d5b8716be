// Regenerates tests/compat/cases/<name>/{blueprint.json, expected.json, case.json,
// initial-context.json, subflow-<id>.json} by building and running each case with flowcraft.
//
//   node generate.mjs            all cases, each in its own node process
//   node generate.mjs NAME...    only these cases
//
// Each case runs in a fresh process because flowcraft's builder names inline functions
// `fn_<hash of source + a process-wide counter>`: a fresh process keeps a case's `uses` keys
// independent of the other cases. functions.yaml (the Python ports) is not written here: it is
// produced from tests/compat/ports.py by tests/compat/write_functions.py, which reads the
// `uses` keys from blueprint.json.
import { spawn } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
const casesDir = join(here, '..', 'cases')
const BUILTINS = ['batch-scatter', 'batch-gather', 'loop-controller', 'subflow', 'wait', 'sleep', 'webhook']
// Built-in node classes given to the builder directly register under their class name.
const BUILTIN_CLASSES = {
	BatchScatterNode: 'batch-scatter',
	BatchGatherNode: 'batch-gather',
	SubflowNode: 'subflow',
	WaitNode: 'wait',
	SleepNode: 'sleep',
	WebhookNode: 'webhook',
}

function installFixedClock(iso) {
	// Every `new Date()` / `Date.now()` (in the example code and in flowcraft) reads one instant.
	const fixed = Date.parse(iso)
	const RealDate = Date
	class FixedDate extends RealDate {
		constructor(...args) {
			if (args.length === 0) super(fixed)
			else super(...args)
		}
		static now() {
			return fixed
		}
	}
	globalThis.Date = FixedDate
}

// Resume what a paused run awaits, as flowcraft users do: a sleep (reason "timer") as its
// scheduler does once the timer is due, `resume(..., { output: undefined }, nodeId)`; a wait
// (reason "external_event") with the case's resume data for that node, when it has some.
// Repeats while the run pauses again on something it can resume; the last result is returned.
async function resumeAll(runtime, blueprint, result, resumeData, options) {
	let steps = 0
	while (result.status === 'awaiting' && steps < 20) {
		const ids = result.context._awaitingNodeIds ?? []
		const details = result.context._awaitingDetails ?? {}
		const nodeId = ids.find((id) => details[id]?.reason === 'timer' || id in resumeData)
		if (nodeId === undefined) break
		const data = details[nodeId]?.reason === 'timer' ? { output: undefined } : resumeData[nodeId]
		result = await runtime.resume(blueprint, result.serializedContext, data, nodeId, options)
		steps++
	}
	return steps > 0 ? result : undefined
}

function asExpected(result) {
	const { _executionId, ...context } = result.context
	// JSON.stringify drops keys whose value is undefined: such keys are absent here.
	return { status: result.status, context: JSON.parse(JSON.stringify(context)) }
}

function writeJson(path, value) {
	writeFileSync(path, `${JSON.stringify(value, null, 2)}\n`)
}

async function allCases() {
	const { cases } = await import('./cases.mjs')
	const { exampleCases } = await import('./cases-examples.mjs')
	return [...cases, ...exampleCases]
}

async function runOne(name) {
	const { FIXED_NOW } = await import('./cases.mjs')
	installFixedClock(FIXED_NOW)
	const { FlowRuntime, PropertyEvaluator, UnsafeEvaluator, NullLogger } = await import('flowcraft')
	const spec = (await allCases()).find((c) => c.name === name)
	if (!spec) throw new Error(`unknown case ${name}`)
	const built = spec.build()
	const initialContext = built.initialContext ?? spec.initialContext
	const blueprint = JSON.parse(JSON.stringify(built.blueprint))
	const dir = join(casesDir, name)
	mkdirSync(dir, { recursive: true })
	writeJson(join(dir, 'blueprint.json'), built.blueprint)
	if (initialContext !== undefined) writeJson(join(dir, 'initial-context.json'), initialContext)
	for (const [id, bp] of Object.entries(built.subflows ?? {})) writeJson(join(dir, `subflow-${id}.json`), bp)

	const runtime = new FlowRuntime({
		logger: new NullLogger(),
		evaluator: spec.evaluator === 'unsafe' ? new UnsafeEvaluator() : new PropertyEvaluator(),
		...(built.registry ? { registry: built.registry } : {}),
		...(built.subflows ? { blueprints: built.subflows } : {}),
	})
	const options = built.functionRegistry ? { functionRegistry: built.functionRegistry } : undefined
	let expected
	try {
		const result = await runtime.run(blueprint, initialContext ?? {}, options)
		expected = asExpected(result)
		// flowcraft's result once the sleeps woke up and the waits got spec.resume's data.
		const resumed = await resumeAll(runtime, blueprint, result, spec.resume ?? {}, options)
		if (resumed !== undefined) expected.resumed = asExpected(resumed)
	} catch (error) {
		// run() itself rejected (e.g. flowcraft's traversal limit): no result context exists.
		expected = { status: 'threw', error: String(error?.message ?? error), context: null }
	}
	writeJson(join(dir, 'expected.json'), { ...expected, evaluator: spec.evaluator })
	const used = new Set()
	for (const bp of [built.blueprint, ...Object.values(built.subflows ?? {})])
		for (const node of bp.nodes) {
			const type = BUILTIN_CLASSES[node.uses] ?? node.uses
			if (BUILTINS.includes(type)) used.add(type)
		}
	const builtins = BUILTINS.filter((b) => used.has(b))
	const caseJson = { source: spec.source, builtins }
	// `pending` and `timingDependent` are maintained by hand once a case exists (the tests
	// decide what runs): keep them; a new case using a built-in node type starts pending.
	const casePath = join(dir, 'case.json')
	const previous = existsSync(casePath) ? JSON.parse(readFileSync(casePath, 'utf8')) : undefined
	if (previous === undefined) {
		if (builtins.length > 0) caseJson.pending = `needs built-in node type ${builtins.join(', ')} (next issue)`
	} else if (previous.pending !== undefined) caseJson.pending = previous.pending
	if (spec.resume !== undefined) caseJson.resume = spec.resume
	caseJson.notes = spec.notes
	if (previous?.timingDependent !== undefined) caseJson.timingDependent = previous.timingDependent
	writeJson(casePath, caseJson)
	console.log(`${name}: ${expected.status}${caseJson.pending ? ` (pending: ${builtins.join(', ')})` : ''}`)
}

async function main() {
	const args = process.argv.slice(2)
	if (args[0] === '--one') {
		await runOne(args[1])
		process.exit(0) // flowcraft's scheduler may hold timers for sleeping workflows
	}
	const names = args.length > 0 ? args : (await allCases()).map((c) => c.name)
	const queue = [...names]
	let failed = 0
	const worker = async () => {
		while (queue.length > 0) {
			const name = queue.shift()
			const code = await new Promise((resolve) => {
				const child = spawn(process.execPath, [fileURLToPath(import.meta.url), '--one', name], {
					stdio: 'inherit',
				})
				child.on('exit', resolve)
			})
			if (code !== 0) {
				failed++
				console.error(`${name}: generator failed (exit ${code})`)
			}
		}
	}
	await Promise.all(Array.from({ length: 6 }, worker))
	if (failed > 0) process.exit(1)
}

await main()
