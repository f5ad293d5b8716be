// The compat cases: flowcraft 2.10.1's documented workflows, rebuilt with flowcraft's own builder.
//
// Each case's node functions are the documented ones (console output left out). Where a
// function is non-deterministic the replacement is written here and in the Python port
// (tests/compat/ports.py) and noted in `notes`:
//   - `new Date()` / `Date.now()`: generate.mjs installs a fixed clock (FIXED_NOW below), so the
//     documented code runs unchanged and the Python port uses the same literal.
//   - `Math.random()`: a fixed draw, chosen per case and named in `notes`.
//   - process-wide counters used to fail the first attempts (demo Retry, guide retry): ported
//     as `ctx.attempt` (the same attempt number, without shared process state).
// Middleware that the example runtimes install (logging, retry loops, transactions) is not part
// of a blueprint and is not reproduced; where it changes the outcome the notes say so.
import { BaseNode, createFlow, SubflowNode } from 'flowcraft'

export const FIXED_NOW = '2024-01-01T00:00:00.000Z'

// The resume data of wait cases: hitl.md's `runtime.resume(..., { output: { approved: true } }, ...)`.
const APPROVE = { output: { approved: true } }
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

const DEMO = 'docs/src/.vitepress/theme/components/Demo'
const GUIDE = 'docs/src/guide'
const EX = 'examples'

// The docs' <Flow> component (docs/src/.vitepress/theme/components/Flow.vue) runs every demo
// with UnsafeEvaluator and `init` (or {}) as the initial context.
const demoNotes = 'Run as the docs site runs demos: UnsafeEvaluator, initial context = the demo\'s `init` or {}.'

function fromFlow(flow, extra = {}) {
	return { blueprint: flow.toBlueprint(), functionRegistry: flow.getFunctionRegistry(), ...extra }
}

async function mockApiCall(name, delay, shouldFail = false) {
	await new Promise((resolve) => setTimeout(resolve, delay))
	if (shouldFail) {
		throw new Error(`API call "${name}" failed.`)
	}
	const result = { data: `Data from ${name}` }
	return { output: result }
}

export const cases = [
	// ------------------------------------------------------------------ docs demos
	{
		name: 'demo-basic',
		source: `${DEMO}/Basic.vue`,
		evaluator: 'unsafe',
		notes: `${demoNotes} Delays 1000/1500/500 ms are 0.2 s in the port. Steps.vue shows the same flow.`,
		build: () =>
			fromFlow(
				createFlow('basic-workflow')
					.node('step-a', () => mockApiCall('Step A', 1000))
					.node('step-b', async () => {
						return mockApiCall('Step B', 1500)
					})
					.node('step-c', async () => {
						return mockApiCall('Step C', 500)
					})
					.edge('step-a', 'step-b')
					.edge('step-b', 'step-c'),
			),
	},
	{
		name: 'demo-batch',
		source: `${DEMO}/Batch.vue`,
		evaluator: 'unsafe',
		notes: `${demoNotes} Delays capped at 0.2 s in the port.`,
		build: () =>
			fromFlow(
				createFlow('batch-example')
					.node('start', async () => {
						await sleep(1000)
						return { output: [10, 20, 30] }
					})
					.batch(
						'double-items',
						async ({ input }) => {
							await sleep(1000)
							return { output: input * 2 }
						},
						{ inputKey: 'start', outputKey: 'doubled' },
					)
					.node(
						'sum-results',
						async ({ input }) => {
							await sleep(1000)
							return { output: input.reduce((acc, val) => acc + val, 0) }
						},
						{ inputs: 'doubled' },
					)
					.edge('start', 'double-items')
					.edge('double-items', 'sum-results'),
			),
	},
	{
		name: 'demo-declarative',
		source: `${DEMO}/Declarative.vue`,
		evaluator: 'unsafe',
		notes: `${demoNotes} A hand-written blueprint plus a registry object (FlowRuntime({registry})), not the builder. Delays capped at 0.2 s in the port.`,
		build: () => ({
			blueprint: {
				id: 'coffee-shop-order',
				nodes: [
					{ id: 'take-order', uses: 'takeOrderFn' },
					{ id: 'make-drink', uses: 'makeDrinkFn', inputs: 'take-order' },
					{ id: 'serve-customer', uses: 'serveCustomerFn', inputs: 'make-drink' },
				],
				edges: [
					{ source: 'take-order', target: 'make-drink' },
					{ source: 'make-drink', target: 'serve-customer' },
				],
			},
			registry: {
				takeOrderFn: async () => {
					await sleep(1000)
					return { output: { item: 'Coffee', size: 'Medium' } }
				},
				makeDrinkFn: async ({ input }) => {
					await sleep(1000)
					return { output: `Made ${input.size} ${input.item}` }
				},
				serveCustomerFn: async ({ input }) => {
					await sleep(1000)
					return { output: `Served: ${input}` }
				},
			},
		}),
	},
	{
		name: 'demo-fallback',
		source: `${DEMO}/Fallback.vue`,
		evaluator: 'unsafe',
		notes: `${demoNotes} Delays capped at 0.2 s in the port.`,
		build: () => {
			const failingApi = async () => mockApiCall('Failing', 500, true)
			const fallbackApi = async () => mockApiCall('Fallback', 500)
			return fromFlow(
				createFlow('error-workflow')
					.node('start-error', async () => ({ output: 'start' }))
					.node('failing-node', failingApi, { config: { maxRetries: 2, fallback: 'fallback-node' } })
					.node('fallback-node', fallbackApi)
					.node('final-step', async () => ({ output: 'Workflow finished' }))
					.edge('start-error', 'failing-node')
					.edge('failing-node', 'final-step'),
			)
		},
	},
	{
		name: 'demo-getting-started',
		source: `${DEMO}/GettingStarted.vue`,
		evaluator: 'unsafe',
		initialContext: { value: 42 },
		notes: `${demoNotes} Delays capped at 0.2 s in the port.`,
		build: () => {
			async function startNode({ context }) {
				await sleep(500)
				return { output: await context.get('value') }
			}
			async function doubleNode({ input }) {
				await sleep(500)
				return { output: input * 2 }
			}
			return fromFlow(
				createFlow('simple-workflow')
					.node('start', startNode)
					.node('double', doubleNode)
					.edge('start', 'double'),
			)
		},
	},
	{
		name: 'demo-hitl',
		source: `${DEMO}/Hitl.vue`,
		evaluator: 'unsafe',
		notes: `${demoNotes} flowcraft stops at the wait node (status awaiting); the demo resumes it from the UI.`,
		resume: { 'wait-for-approval': APPROVE },
		build: () =>
			fromFlow(
				createFlow('hitl-workflow')
					.node('start-approval', async () => ({ output: { user: 'Alice', amount: 1500 } }))
					.wait('wait-for-approval')
					.node('process-decision', async ({ input }) => {
						if (input?.approved) return { output: 'Request was approved.' }
						return { output: 'Request was denied.' }
					})
					.edge('start-approval', 'wait-for-approval')
					.edge('wait-for-approval', 'process-decision'),
			),
	},
	{
		name: 'demo-intro',
		source: `${DEMO}/Intro.vue`,
		evaluator: 'unsafe',
		notes: `${demoNotes} LAG (800 ms) is 0.2 s in the port.`,
		resume: { 'wait-manager': APPROVE },
		build: () => {
			const LAG = 800
			return fromFlow(
				createFlow('expense-report-pipeline')
					.node('fetch-report', async ({ context }) => {
						await sleep(LAG)
						await context.set('reportId', 'EXP-001')
						await context.set('employee', 'Alice')
						return {
							output: [
								{ amount: 45, type: 'meals', receipt: 'receipt-1.jpg' },
								{ amount: 120, type: 'travel', receipt: 'receipt-2.jpg' },
								{ amount: 1500, type: 'equipment', receipt: 'receipt-3.jpg' },
							],
						}
					})
					.batch(
						'validate-items',
						async ({ input }) => {
							await sleep(LAG)
							const ocrConfidence = input.amount > 1000 ? 0.7 : 0.95
							return { output: { ...input, ocrConfidence, status: 'validated' } }
						},
						{ inputKey: 'fetch-report', outputKey: 'validated' },
					)
					.node(
						'compute-total',
						async ({ input, context }) => {
							await sleep(LAG)
							const total = input.reduce((sum, item) => sum + item.amount, 0)
							const minConfidence = Math.min(...input.map((i) => i.ocrConfidence))
							await context.set('total', total)
							await context.set('minConfidence', minConfidence)
							await context.set('ocrAttempts', 0)
							return { output: { total, minConfidence } }
						},
						{ inputs: 'validated' },
					)
					.edge('fetch-report', 'validate-items')
					.edge('validate-items', 'compute-total')
					.node('enhance-ocr', async ({ context }) => {
						await sleep(LAG)
						const attempts = (await context.get('ocrAttempts')) || 0
						const currentMin = (await context.get('minConfidence')) || 0
						const newAttempts = attempts + 1
						const improved = Math.min(0.95, currentMin + 0.1 * newAttempts)
						await context.set('minConfidence', improved)
						await context.set('ocrAttempts', newAttempts)
						return { output: { minConfidence: improved, ocrAttempts: newAttempts } }
					})
					.loop('ocrRetry', {
						startNodeId: 'enhance-ocr',
						endNodeId: 'enhance-ocr',
						condition: 'minConfidence < 0.9 && ocrAttempts < 3',
					})
					.edge('compute-total', 'ocrRetry')
					.edge('ocrRetry', 'route-by-total')
					.node('route-by-total', async ({ context }) => {
						await sleep(LAG)
						const total = (await context.get('total')) || 0
						return { output: { total } }
					})
					.edge('route-by-total', 'wait-manager', {
						condition: 'route-by-total.total >= 500 && route-by-total.total <= 2000',
					})
					.edge('route-by-total', 'auto-approve', { condition: 'route-by-total.total < 500' })
					.edge('route-by-total', 'auto-reject', { condition: 'route-by-total.total > 2000' })
					.wait('wait-manager')
					.node('auto-approve', async () => ({ output: { status: 'approved', method: 'auto' } }))
					.node('auto-reject', async () => ({
						output: { status: 'rejected', reason: 'Exceeds single-report limit' },
					}))
					.node(
						'send-notification',
						async ({ input }) => {
							await sleep(LAG)
							return { output: { message: `Notification sent: ${input.status}` } }
						},
						{ config: { joinStrategy: 'any' } },
					)
					.edge('wait-manager', 'send-notification')
					.edge('auto-approve', 'send-notification')
					.edge('auto-reject', 'send-notification'),
			)
		},
	},
	{
		name: 'demo-loop',
		source: `${DEMO}/Loop.vue`,
		evaluator: 'unsafe',
		notes: `${demoNotes} Delay capped at 0.2 s in the port.`,
		build: () =>
			fromFlow(
				createFlow('loop-example')
					.node('initialize', async ({ context }) => {
						await context.set('count', 0)
						return { output: 'Initialized' }
					})
					.node('increment', async ({ context }) => {
						const currentCount = (await context.get('count')) || 0
						const newCount = currentCount + 1
						await sleep(500)
						await context.set('count', newCount)
						return { output: newCount }
					})
					.loop('counter', { startNodeId: 'increment', endNodeId: 'increment', condition: 'count < 5' })
					.node('finalize', async () => ({ output: 'Finalized' }))
					.edge('initialize', 'counter')
					.edge('counter', 'finalize'),
			),
	},
	{
		name: 'demo-parallel',
		source: `${DEMO}/Parallel.vue`,
		evaluator: 'unsafe',
		notes: `${demoNotes} Delays 2000/1000/1500 ms are 0.2/0.05/0.1 s in the port (same finishing order).`,
		build: () =>
			fromFlow(
				createFlow('parallel-workflow')
					.node('start-parallel', async () => ({ output: 'start' }))
					.node('task-1', () => mockApiCall('Task 1', 2000))
					.node('task-2', () => mockApiCall('Task 2', 1000))
					.node('task-3', () => mockApiCall('Task 3', 1500))
					.node('gather', async (ctx) => {
						const t1 = await ctx.context.get('_outputs.task-1')
						const t2 = await ctx.context.get('_outputs.task-2')
						const t3 = await ctx.context.get('_outputs.task-3')
						return { output: { t1, t2, t3 } }
					})
					.edge('start-parallel', 'task-1')
					.edge('start-parallel', 'task-2')
					.edge('start-parallel', 'task-3')
					.edge('task-1', 'gather')
					.edge('task-2', 'gather')
					.edge('task-3', 'gather'),
			),
	},
	{
		name: 'demo-programmatic',
		source: `${DEMO}/Programmatic.vue`,
		evaluator: 'unsafe',
		notes: `${demoNotes} Delays capped at 0.2 s in the port.`,
		build: () =>
			fromFlow(
				createFlow('user-processing')
					.node('fetch-user', async ({ context }) => {
						const user = { id: 1, name: 'Alice' }
						await context.set('user_data', user)
						await sleep(1000)
						return { output: user }
					})
					.node(
						'validate-user',
						async ({ context, input }) => {
							const userData = input
							const isValid = userData.name === 'Alice'
							await context.set('validation_result', isValid)
							await sleep(1000)
							return { output: isValid, action: isValid ? 'valid' : 'invalid' }
						},
						{ inputs: 'fetch-user' },
					)
					.node('process-valid', async ({ context }) => {
						const userData = await context.get('user_data')
						await context.set('processing_status', 'completed')
						await sleep(1000)
						return { output: `Processed user ${userData?.name}` }
					})
					.node('handle-invalid', async ({ context }) => {
						await context.set('processing_status', 'failed')
						await sleep(1000)
						return { output: 'Invalid user data' }
					})
					.edge('fetch-user', 'validate-user')
					.edge('validate-user', 'process-valid', { action: 'valid' })
					.edge('validate-user', 'handle-invalid', { action: 'invalid' }),
			),
	},
	{
		name: 'demo-retry',
		source: `${DEMO}/Retry.vue`,
		evaluator: 'unsafe',
		notes: `${demoNotes} The demo's module-level failCount (fails calls 1-2) is ctx.attempt <= 2 in the port. Delays capped at 0.2 s.`,
		build: () => {
			let failCount = 0
			async function flakyApi() {
				failCount++
				if (failCount <= 2) return mockApiCall('Flaky', 500, true)
				return mockApiCall('Flaky', 500, false)
			}
			return fromFlow(
				createFlow('retries-workflow')
					.node('start-retries', async () => ({ output: 'start' }))
					.node('flaky-node', flakyApi, { config: { maxRetries: 3 } })
					.node('final-step', async () => {
						failCount = 0
						return { output: 'Workflow finished' }
					})
					.edge('start-retries', 'flaky-node')
					.edge('flaky-node', 'final-step'),
			)
		},
	},
	{
		name: 'demo-visualization',
		source: `${DEMO}/Visualization.vue`,
		evaluator: 'unsafe',
		notes: `${demoNotes} 'check' returns only an action and the process nodes return {}: their outputs are undefined in flowcraft (absent from expected.json).`,
		build: () =>
			fromFlow(
				createFlow('visualization-example')
					.node('fetch', async () => ({ output: { value: 10 } }))
					.node('check', async ({ input }) => ({ action: input.value > 5 ? 'big' : 'small' }), {
						threshold: 5,
					})
					.node('process-big', async () => ({}))
					.node('process-small', async () => ({}))
					.edge('fetch', 'check')
					.edge('check', 'process-big', { action: 'big' })
					.edge('check', 'process-small', { action: 'small' }),
			),
	},
	// ------------------------------------------------------------------ guide pages
	{
		name: 'guide-getting-started',
		source: `${GUIDE}/getting-started.md`,
		evaluator: 'property',
		initialContext: { value: 42 },
		notes: 'The first run stops at the sleep node (status awaiting); the guide then resumes it.',
		build: () => {
			async function startNode({ context }) {
				const output = await context.get('value')
				return { output }
			}
			async function doubleNode({ input }) {
				return { output: input * 2 }
			}
			return fromFlow(
				createFlow('simple-workflow')
					.node('start', startNode)
					.sleep('pause', { duration: 1000 })
					.node('double', doubleNode)
					.edge('start', 'pause')
					.edge('pause', 'double'),
			)
		},
	},
	{
		name: 'guide-core-concepts-state',
		source: `${GUIDE}/core-concepts.md`,
		evaluator: 'property',
		notes: "The 'state-example' snippet: a node's output is readable as a context key named after it.",
		build: () =>
			fromFlow(
				createFlow('state-example')
					.node('initial_data', async () => ({ output: { value: 100 } }))
					.node('process_data', async ({ context }) => {
						const data = await context.get('initial_data')
						const processed = data.value * 2
						return { output: processed }
					})
					.edge('initial_data', 'process_data'),
			),
	},
	{
		name: 'guide-core-concepts-stateful',
		source: `${GUIDE}/core-concepts.md`,
		evaluator: 'property',
		notes: "The 'stateful-workflow' snippet: context.set/get across nodes.",
		build: () =>
			fromFlow(
				createFlow('stateful-workflow')
					.node('step1', async ({ context }) => {
						await context.set('count', 1)
						await context.set('history', ['Step 1 started'])
						return { output: 'Step 1 complete' }
					})
					.node('step2', async ({ context }) => {
						const currentCount = (await context.get('count')) || 0
						const history = (await context.get('history')) || []
						const newCount = currentCount + 1
						const newHistory = [...history, `Step 2: count is now ${newCount}`]
						await context.set('count', newCount)
						await context.set('history', newHistory)
						return { output: 'Step 2 complete' }
					})
					.edge('step1', 'step2'),
			),
	},
	{
		name: 'guide-core-concepts-cancellable',
		source: `${GUIDE}/core-concepts.md`,
		evaluator: 'property',
		notes: "The 'cancellable-workflow' snippet run to completion: the guide aborts only after run() returned, so nothing is cancelled. task1's 1000 ms wait is 0.2 s in the port.",
		build: () =>
			fromFlow(
				createFlow('cancellable-workflow')
					.node('task1', async ({ context, signal }) => {
						signal?.throwIfAborted()
						await new Promise((resolve) => setTimeout(resolve, 1000))
						return { output: 'Task 1 complete' }
					})
					.node('task2', async ({ context }) => {
						return { output: 'Task 2 complete' }
					})
					.edge('task1', 'task2'),
			),
	},
	{
		name: 'guide-core-concepts-approval',
		source: `${GUIDE}/core-concepts.md`,
		evaluator: 'property',
		notes: "The 'approval-workflow' snippet; stops at the wait node (status awaiting).",
		resume: { 'approval': APPROVE },
		build: () =>
			fromFlow(
				createFlow('approval-workflow')
					.node('prepare', () => ({ output: { item: 'document.pdf' } }))
					.wait('approval')
					.node('process', async ({ input }) => {
						if (input?.approved) {
							return { output: 'Document approved and processed' }
						}
						return { output: 'Document rejected' }
					})
					.edge('prepare', 'approval')
					.edge('approval', 'process'),
			),
	},
	{
		name: 'guide-core-concepts-delayed',
		source: `${GUIDE}/core-concepts.md`,
		evaluator: 'property',
		notes: "The 'delayed-workflow' snippet (also in hitl.md); stops at the sleep node (status awaiting).",
		build: () =>
			fromFlow(
				createFlow('delayed-workflow')
					.node('start', () => ({ output: 'Starting delayed task' }))
					.sleep('delay', { duration: 5000 })
					.node('finish', () => ({ output: 'Task completed after delay' }))
					.edge('start', 'delay')
					.edge('delay', 'finish'),
			),
	},
	{
		name: 'guide-error-handling-retry',
		source: `${GUIDE}/error-handling.md`,
		evaluator: 'property',
		notes: "The 'retry-workflow' snippet. Its module-level attempts counter (fail while < 3) is ctx.attempt < 3 in the port.",
		build: () => {
			let attempts = 0
			return fromFlow(
				createFlow('retry-workflow').node(
					'risky-operation',
					async () => {
						attempts++
						if (attempts < 3) {
							throw new Error('Temporary failure!')
						}
						return { output: 'Succeeded on attempt 3' }
					},
					{ config: { maxRetries: 3 } },
				),
			)
		},
	},
	{
		name: 'guide-error-handling-fallback',
		source: `${GUIDE}/error-handling.md`,
		evaluator: 'property',
		notes: "The 'fallback-workflow' snippet: primary fails twice, the fallback's output flows on.",
		build: () =>
			fromFlow(
				createFlow('fallback-workflow')
					.node(
						'primary-api',
						async () => {
							throw new Error('Primary API is down')
						},
						{ config: { maxRetries: 2, fallback: 'secondary-api' } },
					)
					.node('secondary-api', async () => {
						return { output: 'Data from secondary API' }
					})
					.node('process-data', async ({ input }) => {
						return { output: `Processed: ${input}` }
					})
					.edge('primary-api', 'process-data')
					.edge('secondary-api', 'process-data'),
			),
	},
	{
		name: 'guide-batches',
		source: `${GUIDE}/batches.md`,
		evaluator: 'property',
		notes: "The 'batch-workflow' snippet.",
		build: () =>
			fromFlow(
				createFlow('batch-workflow')
					.node('start', async () => ({ output: [10, 20, 30] }))
					.batch('double-items', async ({ input }) => ({ output: input * 2 }), {
						inputKey: 'start',
						outputKey: 'doubled',
					})
					.node(
						'sum-results',
						async ({ input }) => {
							const sum = input.reduce((acc, val) => acc + val, 0)
							return { output: sum }
						},
						{ inputs: 'doubled' },
					)
					.edge('start', 'double-items')
					.edge('double-items', 'sum-results'),
			),
	},
	{
		name: 'guide-loops-counter',
		source: `${GUIDE}/loops.md`,
		evaluator: 'unsafe',
		notes: "The 'loop-workflow' snippet (the page tells users to run loops with UnsafeEvaluator).",
		build: () =>
			fromFlow(
				createFlow('loop-workflow')
					.node('initialize', async ({ context }) => {
						await context.set('count', 0)
						return { output: 'Initialized' }
					})
					.node('increment', async ({ context }) => {
						const currentCount = (await context.get('count')) || 0
						const newCount = currentCount + 1
						await context.set('count', newCount)
						return { output: newCount }
					})
					.loop('counter', { startNodeId: 'increment', endNodeId: 'increment', condition: 'count < 5' })
					.edge('initialize', 'counter'),
			),
	},
	{
		name: 'guide-loops-conditional',
		source: `${GUIDE}/loops.md`,
		evaluator: 'unsafe',
		notes: "The 'conditional-loop' snippet. Its process/check functions return plain objects, not {output}, so flowcraft records their outputs as undefined.",
		build: () =>
			fromFlow(
				createFlow('conditional-loop')
					.node('process', async ({ context }) => {
						const items = (await context.get('items')) || []
						const item = items.shift()
						await context.set('items', items)
						return { item }
					})
					.node('check', async ({ context }) => {
						const items = (await context.get('items')) || []
						return { shouldContinue: items.length > 0 }
					})
					.loop('loop', { startNodeId: 'process', endNodeId: 'check', condition: 'result.shouldContinue === true' })
					.edge('check', 'process')
					.edge('check', 'done', { condition: 'result.shouldContinue === false' })
					.node('done', async ({ context }) => ({ output: 'Completed' })),
			),
	},
	{
		name: 'guide-subflows-math',
		source: `${GUIDE}/subflows.md`,
		evaluator: 'property',
		notes: "The 'parent-workflow' + 'math-subflow' snippets (subflow blueprint in subflow-math-subflow.json).",
		build: () => {
			const math = createFlow('math-subflow').node('add', async ({ context }) => {
				const a = await context.get('a')
				const b = await context.get('b')
				const sum = a + b
				return { output: sum }
			})
			const parentFlow = createFlow('parent-workflow')
				.node('prepare-data', async ({ context }) => {
					await context.set('val1', 10)
					await context.set('val2', 20)
					return { output: 'Data ready' }
				})
				.node('run-math', SubflowNode, {
					params: { blueprintId: 'math-subflow', inputs: { a: 'val1', b: 'val2' }, outputs: { addition_result: 'add' } },
				})
				.edge('prepare-data', 'run-math')
			return fromFlow(parentFlow, {
				subflows: { 'math-subflow': math.toBlueprint() },
				functionRegistry: new Map([...parentFlow.getFunctionRegistry(), ...math.getFunctionRegistry()]),
			})
		},
	},
	{
		name: 'guide-hitl-approval',
		source: `${GUIDE}/hitl.md`,
		evaluator: 'property',
		notes: "The first 'approval-workflow' snippet; stops at the wait node (status awaiting).",
		resume: { 'wait-for-approval': APPROVE },
		build: () =>
			fromFlow(
				createFlow('approval-workflow')
					.node('start', () => ({ output: { user: 'Alice', amount: 1500 } }))
					.wait('wait-for-approval')
					.node('process', async ({ input }) => {
						if (input?.approved) {
							return { output: 'Approved' }
						}
						return { output: 'Denied' }
					})
					.edge('start', 'wait-for-approval')
					.edge('wait-for-approval', 'process'),
			),
	},
	{
		name: 'guide-pausing-expense-approval',
		source: `${GUIDE}/pausing.md`,
		evaluator: 'property',
		notes: "The 'expense-approval' snippet; stops at the wait node (status awaiting).",
		resume: { 'manager-approval': APPROVE },
		build: () =>
			fromFlow(
				createFlow('expense-approval')
					.node('submit', async ({ context }) => {
						await context.set('request', { user: 'Alice', amount: 1500 })
						return { output: 'Expense submitted' }
					})
					.wait('manager-approval')
					.node('process', async ({ context }) => {
						const approval = await context.get('approval')
						if (approval?.approved) {
							return { output: 'Expense approved and processed' }
						}
						return { output: 'Expense rejected' }
					})
					.edge('submit', 'manager-approval')
					.edge('manager-approval', 'process'),
			),
	},
]
