// Cases from flowcraft's examples/*/*/src/workflow.ts (AI/LLM and UI examples excluded).
// See cases.mjs for how non-determinism is removed.
import { BaseNode, createFlow, SubflowNode } from 'flowcraft'

const EX = 'examples'
const mwNote = (mw) =>
	`The example's runtime installs ${mw} middleware; middleware is not part of a blueprint and is not reproduced.`

function fromFlow(flow, extra = {}) {
	return { blueprint: flow.toBlueprint(), functionRegistry: flow.getFunctionRegistry(), ...extra }
}

// ---------------------------------------------------------------- advanced/hitl-workflow
async function prepareTask(ctx) {
	const { context } = ctx
	await context.set('task', { id: 'task_123', description: 'Process customer refund request', amount: 99.99, reason: 'Product defect' })
	await context.set('status', 'prepared')
	return { output: 'Task prepared' }
}
async function humanReview(ctx) {
	const { context } = ctx
	const task = await context.get('task')
	if (!task) throw new Error('Invalid task')
	const approved = true // the example asks on the terminal; the compat case answers "y"
	await context.set('approved', approved)
	await context.set('reviewer', 'interactive.user@terminal')
	await context.set('reviewTimestamp', new Date().toISOString())
	return { output: approved ? 'Approved' : 'Rejected' }
}
async function executeApprovedTask(ctx) {
	const { context } = ctx
	const task = await context.get('task')
	if (!task) throw new Error('Invalid task')
	const approved = await context.get('approved')
	if (!approved) throw new Error('Task not approved')
	await context.set('executed', true)
	await context.set('executionTimestamp', new Date().toISOString())
	return { output: 'Task executed' }
}
async function handleRejection(ctx) {
	const { context } = ctx
	const task = await context.get('task')
	if (!task) throw new Error('Invalid task')
	await context.set('handled', true)
	return { output: 'Rejection handled' }
}

// ---------------------------------------------------------------- advanced/loops-and-cycles
async function initialize(ctx) {
	await ctx.context.set('counter', 0)
	await ctx.context.set('maxIterations', 5)
	return { output: 0 }
}
async function increment(ctx) {
	const count = (await ctx.context.get('counter')) ?? 0
	const newCount = count + 1
	await ctx.context.set('counter', newCount)
	return { output: newCount }
}
async function done(_ctx) {
	return { output: 'Done' }
}
async function prepareItems(ctx) {
	const items = ['task-1', 'task-2', 'task-3']
	await ctx.context.set('items', items)
	await ctx.context.set('processedItems', [])
	await ctx.context.set('counter', 0)
	return { output: items }
}
async function processItem(ctx) {
	const items = (await ctx.context.get('items')) ?? []
	const item = items[0]
	const count = (await ctx.context.get('counter')) ?? 0
	await ctx.context.set('counter', count + 1)
	return { output: item }
}
async function markComplete(ctx) {
	const processed = (await ctx.context.get('processedItems')) ?? []
	const items = (await ctx.context.get('items')) ?? []
	const item = items.shift()
	if (item) processed.push(item)
	await ctx.context.set('items', items)
	await ctx.context.set('processedItems', processed)
	return { output: item }
}
async function validateInput(ctx) {
	const data = await ctx.context.get('inputData')
	return { output: { valid: true, data } }
}
async function enrichInput(ctx) {
	const input = ctx.input
	return { output: { ...input, enriched: true } }
}
async function attemptOperation(ctx) {
	const count = (await ctx.context.get('counter')) ?? 0
	await ctx.context.set('counter', count + 1)
	const success = count + 1 >= 3
	await ctx.context.set('success', success)
	return { output: { attempt: count + 1, success } }
}
async function onSuccess(_ctx) {
	return { output: 'completed' }
}
const loopInit = (maxIterations) => ({ counter: 0, maxIterations, items: [], processedItems: [], success: false })

// ---------------------------------------------------------------- core-api/basic-workflow-execution
async function validateUser(ctx) {
	const { context } = ctx
	const user = await context.get('user')
	if (!user?.name) throw new Error('Invalid user: missing name')
	return { output: 'User validated successfully' }
}
async function processUser(ctx) {
	const { context } = ctx
	const user = await context.get('user')
	const processedUser = { ...user, processedAt: new Date().toISOString(), status: 'processed' }
	await context.set('processedUser', processedUser)
	return { output: `Processed user: ${user?.name}` }
}
async function sendNotification(ctx) {
	const { context } = ctx
	const _processedUser = await context.get('processedUser')
	return { output: 'Notification sent successfully' }
}

// ---------------------------------------------------------------- core-api/built-in-nodes
async function prepareBatchData(ctx) {
	const { context } = ctx
	const items = [
		{ id: 1, name: 'Item A', value: 10 },
		{ id: 2, name: 'Item B', value: 20 },
		{ id: 3, name: 'Item C', value: 30 },
		{ id: 4, name: 'Item D', value: 40 },
		{ id: 5, name: 'Item E', value: 50 },
	]
	await context.set('batchItems', items)
	return { output: `Prepared ${items.length} items` }
}
async function processBatchItem(ctx) {
	const { input } = ctx
	const item = input
	if (!item) throw new Error('Invalid input')
	const processedItem = {
		...item,
		processed: true,
		processedAt: new Date().toISOString(),
		status: item.value > 25 ? 'high-value' : 'standard',
		metadata: { processor: 'batch-processor-v1', quality: item.value > 35 ? 'premium' : 'standard' },
	}
	return { output: processedItem }
}
async function aggregateBatchResults(ctx) {
	const { context, input } = ctx
	const results = input
	const stats = {
		totalItems: results.length,
		highValueItems: results.filter((item) => item.status === 'high-value').length,
		totalValue: results.reduce((sum, item) => sum + item.value, 0),
		premiumItems: results.filter((item) => item.metadata.quality === 'premium').length,
		processingTime: new Date().toISOString(),
	}
	await context.set('batchStats', stats)
	await context.set('processedItems', results)
	return { output: `Processed ${stats.totalItems} items` }
}
async function setupLoopData(ctx) {
	const { context } = ctx
	const loopData = { counter: 0, maxIterations: 5, results: [], startTime: new Date().toISOString() }
	await context.set('loopData', loopData)
	return { output: 'Loop data ready' }
}
async function loopIteration(ctx) {
	const { context } = ctx
	const loopData = await context.get('loopData')
	if (!loopData) throw new Error('Invalid loop data')
	const currentCount = loopData.counter + 1
	const updatedLoopData = {
		...loopData,
		counter: currentCount,
		results: [...loopData.results, `Iteration ${currentCount} at ${new Date().toISOString()}`],
	}
	await context.set('loopData', updatedLoopData)
	return {
		output: `Iteration ${currentCount} complete`,
		action: currentCount >= loopData.maxIterations ? 'break' : 'continue',
	}
}
async function processLoopResults(ctx) {
	const { context } = ctx
	const loopData = await context.get('loopData')
	if (!loopData) throw new Error('Invalid loop data')
	await context.set('loopSummary', {
		totalIterations: loopData.counter,
		duration: new Date().toISOString(),
		allResults: loopData.results,
	})
	return { output: `Loop completed with ${loopData.counter} iterations` }
}
async function demonstrateWaiting(ctx) {
	const { context } = ctx
	const waitStart = new Date()
	await context.set('waitStart', waitStart.toISOString())
	return { output: 'Wait sequence initiated' }
}
async function waitNode() {
	await new Promise((resolve) => setTimeout(resolve, 1000))
	return { output: 'waited' }
}
async function processAfterWait(ctx) {
	const { context } = ctx
	const waitStart = await context.get('waitStart')
	const waitEnd = new Date()
	const waitDuration = waitEnd.getTime() - new Date(waitStart).getTime()
	await context.set('waitResults', { startTime: waitStart, endTime: waitEnd.toISOString(), durationMs: waitDuration })
	return { output: `Waited for ${waitDuration}ms` }
}
async function mainWorkflowStart(ctx) {
	const { context } = ctx
	await context.set('mainWorkflowData', { startedAt: new Date().toISOString(), subflows: [] })
	return { output: 'Main workflow started' }
}
async function validateData(ctx) {
	const { context } = ctx
	const data = await context.get('inputData')
	if (!data?.name) throw new Error('Invalid input: missing name')
	const completeness = {
		hasName: !!data.name,
		hasEmail: !!data.email,
		hasAge: !!data.age,
		score: [data.name, data.email, data.age].filter(Boolean).length,
	}
	return { output: completeness }
}
async function enrichData(ctx) {
	const { context } = ctx
	const data = await context.get('inputData')
	const enriched = {
		...data,
		metadata: { processedAt: new Date().toISOString(), version: '1.0', source: 'enrichment-subflow' },
		insights: {
			ageGroup: data.age < 25 ? 'young' : data.age < 50 ? 'adult' : 'senior',
			nameLength: data.name.length,
			emailDomain: data.email.split('@')[1],
			processed: true,
		},
	}
	return { output: enriched }
}
async function processSubflowResults(ctx) {
	const { context } = ctx
	const validationResults = await context.get('validationResults')
	const enrichedData = await context.get('enrichedData')
	const finalResult = {
		originalData: await context.get('inputData'),
		validation: validationResults,
		enriched: enrichedData,
		completedAt: new Date().toISOString(),
	}
	await context.set('finalResult', finalResult)
	return { output: 'All subflows completed' }
}

// ---------------------------------------------------------------- core-api/context-state-management
async function readInitialData(ctx) {
	const { context } = ctx
	const inputData = await context.get('input')
	await context.set('workflowData', inputData)
	return { output: 'Data read successfully' }
}
async function checkExistingData(ctx) {
	const { context } = ctx
	const existingData = await context.get('existingData')
	if (existingData) {
		await context.set('dataSource', 'existing')
		return { output: 'Using existing data' }
	} else {
		await context.set('dataSource', 'new')
		return { output: 'Need to initialize data' }
	}
}
async function transformData(ctx) {
	const { context } = ctx
	const workflowData = await context.get('workflowData')
	const dataSource = await context.get('dataSource')
	const transformedData = {
		...workflowData,
		source: dataSource,
		transformedAt: new Date().toISOString(),
		processed: true,
		metadata: { version: '1.0', transformer: 'context-state-management-example' },
	}
	await context.set('transformedData', transformedData)
	return { output: `Transformed data from ${dataSource}` }
}
async function accumulateResults(ctx) {
	const { context } = ctx
	const workflowData = await context.get('workflowData')
	const transformedData = await context.get('transformedData')
	const dataSource = await context.get('dataSource')
	const accumulatedResult = {
		original: workflowData,
		transformed: transformedData,
		source: dataSource,
		accumulatedAt: new Date().toISOString(),
		steps: ['read', 'check', 'transform', 'accumulate'],
		summary: { totalSteps: 4, dataProcessed: true, sourceType: dataSource },
	}
	await context.set('finalResult', accumulatedResult)
	return { output: 'Results accumulated successfully' }
}
async function finalizeContext(ctx) {
	const { context } = ctx
	const finalResult = await context.get('finalResult')
	const cleanOutput = {
		id: finalResult.original.id,
		name: finalResult.original.name,
		status: 'completed',
		processedAt: finalResult.accumulatedAt,
		source: finalResult.source,
		stepsCompleted: finalResult.steps.length,
	}
	await context.set('intermediateData', null)
	await context.set('cleanOutput', cleanOutput)
	return { output: 'Context finalized' }
}
async function createNestedStructure(ctx) {
	const { context } = ctx
	const nestedData = {
		user: {
			profile: {
				basic: { name: 'John', email: 'john@example.com' },
				preferences: { theme: 'dark', notifications: true },
			},
			activity: { lastLogin: new Date().toISOString(), sessionCount: 5 },
		},
		system: { version: '1.0.0', environment: 'development' },
	}
	await context.set('nestedData', nestedData)
	return { output: 'Nested structure created' }
}
async function queryNestedData(ctx) {
	const { context } = ctx
	const nestedData = await context.get('nestedData')
	const userName = nestedData.user.profile.basic.name
	const theme = nestedData.user.profile.preferences.theme
	const version = nestedData.system.version
	const queryResults = {
		userName,
		userTheme: theme,
		systemVersion: version,
		queryTimestamp: new Date().toISOString(),
		accessedPaths: [
			'nestedData.user.profile.basic.name',
			'nestedData.user.profile.preferences.theme',
			'nestedData.system.version',
		],
	}
	await context.set('queryResults', queryResults)
	return { output: `Queried ${queryResults.accessedPaths.length} data paths` }
}

// ---------------------------------------------------------------- core-api/edge-transform
const sampleOrder = {
	id: 'ORD-4521',
	customer: 'Alice Cooper',
	items: [
		{ name: 'Widget', qty: 3 },
		{ name: 'Gadget', qty: 1 },
	],
	shipping: { address: '123 Main St, Springfield, IL 62704', method: 'express' },
}
async function fetchAndValidate(ctx) {
	const { context } = ctx
	const rawOrder = await context.get('rawOrder')
	return {
		output: {
			id: rawOrder.id,
			customer: rawOrder.customer,
			shipping: { address: rawOrder.shipping.address, method: rawOrder.shipping.method },
		},
	}
}
async function notifyWarehouse(ctx) {
	return { output: ctx.input }
}
async function enrichOrder(ctx) {
	const { context } = ctx
	const rawOrder = await context.get('rawOrder')
	const enriched = { ...rawOrder, customerTier: 'gold', loyaltyDiscount: 0.15 }
	return { output: enriched }
}
async function parseOrder(_ctx) {
	return { output: 'Order parsed' }
}
async function applyPricing(ctx) {
	const { context } = ctx
	const discount = await context.get('_inputs.applyPricing')
	return { output: `${discount * 100}% discount applied` }
}

// ---------------------------------------------------------------- core-api/function-class-nodes
async function validateEmail(ctx) {
	const { context } = ctx
	const user = await context.get('user')
	const email = user?.email
	const emailRegex = /^[^\s@]+@[^\s@]+\.[^\s@]+$/
	if (!email || !emailRegex.test(email)) throw new Error(`Invalid email format: ${email}`)
	return { output: 'Email validated' }
}
async function calculateUserScore(ctx) {
	const { context } = ctx
	const user = await context.get('user')
	let score = 0
	if (user?.name && user.name.length > 0) score += 10
	if (user?.email) score += 15
	if (user?.age && user.age >= 18) score += 20
	if (user?.preferences && user.preferences.length > 0) score += 5
	const finalScore = Math.min(score, 100)
	await context.set('userScore', finalScore)
	return { output: `Score: ${finalScore}` }
}
class UserProfileEnricher extends BaseNode {
	async exec(_prepResult, context) {
		const user = await context.context.get('user')
		const score = await context.context.get('userScore')
		const enrichedUser = {
			...user,
			score,
			level: score >= 80 ? 'Premium' : score >= 50 ? 'Standard' : 'Basic',
			badges: [],
		}
		if (score >= 80) enrichedUser.badges.push('Top Scorer')
		if (user.age >= 25) enrichedUser.badges.push('Experienced')
		if (user.preferences?.includes('tech')) enrichedUser.badges.push('Tech Enthusiast')
		await context.context.set('enrichedUser', enrichedUser)
		return { output: `Enriched profile: ${enrichedUser.level} level` }
	}
}
class NotificationSender extends BaseNode {
	sentNotifications = []
	async prep(context) {
		this.sentNotifications = []
		return context.input
	}
	async exec(_prepResult, context) {
		const enrichedUser = await context.context.get('enrichedUser')
		const welcomeMessage = `Welcome ${enrichedUser.name}! You're a ${enrichedUser.level} member.`
		this.sentNotifications.push(`Welcome: ${welcomeMessage}`)
		if (enrichedUser.badges.length > 0) {
			const badgeMessage = `You've earned badges: ${enrichedUser.badges.join(', ')}`
			this.sentNotifications.push(`Badges: ${badgeMessage}`)
		}
		await context.context.set('notificationsSent', this.sentNotifications.length)
		return { output: `Sent ${this.sentNotifications.length} notifications` }
	}
	async post(execResult) {
		return execResult
	}
}

// ---------------------------------------------------------------- middleware/*
async function prepareData(ctx) {
	const { context } = ctx
	await context.set('data', { items: [1, 2, 3] })
	return { output: 'Data prepared' }
}
async function processData(ctx) {
	const { context } = ctx
	const data = await context.get('data')
	await new Promise((resolve) => setTimeout(resolve, 10))
	const processed = data?.items.map((item) => item * 2)
	await context.set('processedData', processed)
	return { output: 'Data processed' }
}
async function finalize(ctx) {
	const { context } = ctx
	const _processed = await context.get('processedData')
	return { output: 'Workflow finalized' }
}
async function failingNode() {
	throw new Error('Simulated error')
}
async function beginTransaction(ctx) {
	const { context } = ctx
	await context.set('transactionId', `txn_${Date.now()}`)
	return { output: 'Transaction begun' }
}
async function insertUser(ctx) {
	const { context } = ctx
	const _transactionId = await context.get('transactionId')
	await new Promise((resolve) => setTimeout(resolve, 5))
	await context.set('userId', 123)
	return { output: 'User inserted' }
}
async function updateUser(ctx) {
	const { context } = ctx
	const _transactionId = await context.get('transactionId')
	const _userId = await context.get('userId')
	await new Promise((resolve) => setTimeout(resolve, 5))
	await context.set('userUpdated', true)
	return { output: 'User updated' }
}
async function commitTransaction(ctx) {
	const { context } = ctx
	const _transactionId = await context.get('transactionId')
	await new Promise((resolve) => setTimeout(resolve, 2))
	return { output: 'Transaction committed' }
}
async function failingOperation() {
	throw new Error('Database constraint violation')
}
const PERF_RECORDS = 20 // the example loads 1000 records; see the case notes
async function loadData(ctx) {
	const { context } = ctx
	await new Promise((resolve) => setTimeout(resolve, 100))
	const data = {
		records: Array.from({ length: PERF_RECORDS }, (_, i) => ({ id: i, value: 0.5 })),
	}
	await context.set('data', data)
	return { output: 'Data loaded' }
}
async function processBatch(ctx) {
	const { context } = ctx
	const data = await context.get('data')
	const processed = data?.records.map((record) => ({ ...record, processedValue: record.value * 2 }))
	await new Promise((resolve) => setTimeout(resolve, 50))
	await context.set('processedData', processed)
	return { output: 'Batch processed' }
}
async function validateResults(ctx) {
	const { context } = ctx
	const processedData = await context.get('processedData')
	const valid = processedData?.every((record) => record.processedValue > 0)
	if (!valid) throw new Error('Validation failed')
	await new Promise((resolve) => setTimeout(resolve, 20))
	await context.set('validated', true)
	return { output: 'Results validated' }
}
async function generateReport(ctx) {
	const { context } = ctx
	const processedData = await context.get('processedData')
	if (!processedData) throw new Error('Invalid processed data')
	const report = {
		totalRecords: processedData.length,
		averageValue: processedData.reduce((sum, r) => sum + r.processedValue, 0) / processedData.length,
		timestamp: new Date().toISOString(),
	}
	await new Promise((resolve) => setTimeout(resolve, 30))
	await context.set('report', report)
	return { output: 'Report generated' }
}

// ---------------------------------------------------------------- reliability/*
async function unstableOperation(ctx) {
	const { context } = ctx
	if (0.5 > 0.7) throw new Error('Random failure') // Math.random() drawn as 0.5
	await context.set('operationDone', true)
	return { output: 'Operation completed' }
}
async function criticalOperation() {
	throw new Error('Critical system error')
}
async function recoveryOperation(ctx) {
	const { context } = ctx
	await context.set('recovered', true)
	return { output: 'Recovery completed' }
}
async function primaryService(ctx) {
	const { context } = ctx
	if (0.9 > 0.5) throw new Error('Primary service unavailable') // Math.random() drawn as 0.9
	await context.set('serviceUsed', 'primary')
	await context.set('response', 'Primary service data')
	return { output: 'Primary service called' }
}
async function secondaryService(ctx) {
	const { context } = ctx
	await new Promise((resolve) => setTimeout(resolve, 300))
	if (0.5 > 0.8) throw new Error('Secondary service error') // Math.random() drawn as 0.5
	await context.set('serviceUsed', 'secondary')
	await context.set('response', 'Secondary service data')
	return { output: 'Secondary service called' }
}
async function tertiaryService(ctx) {
	const { context } = ctx
	await new Promise((resolve) => setTimeout(resolve, 500))
	if (0.5 > 0.9) throw new Error('Tertiary service error') // Math.random() drawn as 0.5
	await context.set('serviceUsed', 'tertiary')
	await context.set('response', 'Tertiary service data')
	return { output: 'Tertiary service called' }
}
async function processResponse(ctx) {
	const { context } = ctx
	const _serviceUsed = await context.get('serviceUsed')
	const _response = await context.get('response')
	await context.set('processed', true)
	return { output: 'Response processed' }
}
async function unreliableOperation(ctx) {
	const { context } = ctx
	if (0.2 > 0.3) throw new Error('Service temporarily unavailable') // Math.random() drawn as 0.2
	await context.set('operationResult', 'success')
	return { output: 'Operation completed' }
}
async function criticalTask(ctx) {
	const { context } = ctx
	if (0.5 > 0.2) throw new Error('Critical system failure') // Math.random() drawn as 0.5
	await context.set('criticalResult', 'success')
	return { output: 'Critical task completed' }
}
async function backupOperation(ctx) {
	const { context } = ctx
	if (0.5 > 0.8) throw new Error('Backup service error') // Math.random() drawn as 0.5
	await context.set('backupResult', 'success')
	return { output: 'Backup operation completed' }
}

// ---------------------------------------------------------------- tooling/*
async function initializeDebug(ctx) {
	const { context } = ctx
	await context.set('debugMode', true)
	await context.set('stepCount', 0)
	return { output: 'Debug initialized' }
}
async function processStep(ctx) {
	const { context } = ctx
	const stepCount = (await context.get('stepCount')) || 0
	await context.set('stepCount', stepCount + 1)
	await context.set('currentStep', `step_${stepCount + 1}`)
	return { output: `Step ${stepCount + 1} processed` }
}
async function checkCondition(ctx) {
	const { context } = ctx
	const stepCount = (await context.get('stepCount')) || 0
	const shouldContinue = stepCount < 3
	await context.set('shouldContinue', shouldContinue)
	return { output: shouldContinue ? 'Continue' : 'Stop' }
}
async function finalizeDebug(ctx) {
	const { context } = ctx
	const stepCount = (await context.get('stepCount')) || 0
	await context.set('finalStepCount', stepCount)
	return { output: 'Debug finalized' }
}
async function analyzeStructure(ctx) {
	const { context } = ctx
	const workflow = await context.get('workflow')
	const nodes = workflow.nodes
	const edges = workflow.edges
	const analysis = {
		nodes: nodes.length,
		edges: edges.length,
		connectedNodes: new Set([...edges.map((e) => e.source), ...edges.map((e) => e.target)]).size,
		isolatedNodes: nodes.filter((n) => !edges.some((e) => e.source === n.id || e.target === n.id)).length,
	}
	await context.set('analysis', analysis)
	return { output: 'Structure analyzed' }
}
async function generateDiagram(ctx) {
	const { context } = ctx
	const workflow = await context.get('workflow')
	const analysis = await context.get('analysis')
	let diagram = `Workflow: ${workflow.id}\n`
	diagram += `${'='.repeat(40)}\n\n`
	workflow.nodes.forEach((node, i) => {
		diagram += `${i + 1}. ${node.id}\n`
	})
	diagram += '\nConnections:\n'
	workflow.edges.forEach((edge) => {
		diagram += `  ${edge.source} --> ${edge.target}\n`
	})
	diagram += `\nStatistics:\n`
	diagram += `  Total nodes: ${analysis.nodes}\n`
	diagram += `  Total edges: ${analysis.edges}\n`
	diagram += `  Connected nodes: ${analysis.connectedNodes}\n`
	diagram += `  Isolated nodes: ${analysis.isolatedNodes}\n`
	await context.set('diagram', diagram)
	return { output: 'Diagram generated' }
}
async function validateDiagram(ctx) {
	const { context } = ctx
	const diagram = await context.get('diagram')
	if (!diagram || diagram.length < 10) throw new Error('Invalid diagram generated')
	await context.set('diagramValid', true)
	return { output: 'Diagram validated' }
}
function createStaticAnalysisDiagramsWorkflow() {
	return createFlow('static-analysis-diagrams-workflow')
		.node('analyzeStructure', analyzeStructure)
		.node('generateDiagram', generateDiagram)
		.node('validateDiagram', validateDiagram)
		.edge('analyzeStructure', 'generateDiagram')
		.edge('generateDiagram', 'validateDiagram')
}

const src = (p) => `${EX}/${p}/src/workflow.ts`

export const exampleCases = [
	{
		name: 'ex-hitl-workflow',
		source: src('advanced/hitl-workflow'),
		evaluator: 'property',
		notes: `The terminal prompt is answered "y" (approved = true). Both edges out of humanReview are unconditional, so executeApprovedTask and handleRejection both run. ${mwNote('an HITL logging')}`,
		build: () =>
			fromFlow(
				createFlow('hitl-workflow')
					.node('prepareTask', prepareTask)
					.node('humanReview', humanReview)
					.node('executeApprovedTask', executeApprovedTask)
					.node('handleRejection', handleRejection)
					.edge('prepareTask', 'humanReview')
					.edge('humanReview', 'executeApprovedTask')
					.edge('humanReview', 'handleRejection'),
			),
	},
	{
		name: 'ex-loops-simple-loop',
		source: src('advanced/loops-and-cycles'),
		evaluator: 'unsafe',
		initialContext: loopInit(5),
		notes: 'createSimpleLoop, run as main.ts runs it.',
		build: () =>
			fromFlow(
				createFlow('simple-loop')
					.node('initialize', initialize)
					.node('increment', increment)
					.node('done', done)
					.edge('initialize', 'counter')
					.edge('counter', 'done')
					.loop('counter', { startNodeId: 'increment', endNodeId: 'increment', condition: 'counter < maxIterations' }),
			),
	},
	{
		name: 'ex-loops-multi-node-loop',
		source: src('advanced/loops-and-cycles'),
		evaluator: 'unsafe',
		initialContext: loopInit(0),
		notes: 'createMultiNodeLoop, run as main.ts runs it.',
		build: () =>
			fromFlow(
				createFlow('multi-node-loop')
					.node('prepare', prepareItems)
					.node('process', processItem)
					.node('markComplete', markComplete)
					.node('done', done)
					.edge('prepare', 'itemLoop')
					.edge('process', 'markComplete')
					.edge('itemLoop', 'done')
					.loop('itemLoop', { startNodeId: 'process', endNodeId: 'markComplete', condition: 'items.length > 0' }),
			),
	},
	{
		name: 'ex-loops-subflow',
		source: src('advanced/loops-and-cycles'),
		evaluator: 'unsafe',
		initialContext: loopInit(0),
		notes: 'createSubflowDemo, run as main.ts runs it (subflow blueprint in subflow-processing-pipeline.json).',
		build: () => {
			const processingSubflow = createFlow('processing-pipeline')
				.node('validate', validateInput)
				.node('enrich', enrichInput)
				.edge('validate', 'enrich')
			const parentFlow = createFlow('parent-with-subflow')
				.node('prepare', prepareItems)
				.node('runPipeline', SubflowNode, {
					params: { blueprintId: 'processing-pipeline', inputs: { inputData: 'items' } },
				})
				.node('done', done)
				.edge('prepare', 'runPipeline')
				.edge('runPipeline', 'done')
			return fromFlow(parentFlow, {
				subflows: { 'processing-pipeline': processingSubflow.toBlueprint() },
				functionRegistry: new Map([...parentFlow.getFunctionRegistry(), ...processingSubflow.getFunctionRegistry()]),
			})
		},
	},
	{
		name: 'ex-loops-retry-loop',
		source: src('advanced/loops-and-cycles'),
		evaluator: 'unsafe',
		initialContext: loopInit(0),
		notes: 'createRetryLoop, run as main.ts runs it.',
		build: () =>
			fromFlow(
				createFlow('retry-loop')
					.node('attempt', attemptOperation)
					.node('success', onSuccess)
					.loop('retry', { startNodeId: 'attempt', endNodeId: 'attempt', condition: 'counter < 5' })
					.edge('retry', 'success', { condition: 'success === true' }),
			),
	},
	{
		name: 'ex-basic-workflow-execution',
		source: src('core-api/basic-workflow-execution'),
		evaluator: 'property',
		initialContext: { user: { name: 'Alice Johnson', email: 'alice@example.com', age: 28 } },
		notes: 'createUserProcessingWorkflow with main.ts\'s sample user.',
		build: () =>
			fromFlow(
				createFlow('user-processing-workflow')
					.node('validateUser', validateUser)
					.node('processUser', processUser)
					.node('sendNotification', sendNotification)
					.edge('validateUser', 'processUser')
					.edge('processUser', 'sendNotification'),
			),
	},
	{
		name: 'ex-built-in-batch',
		source: src('core-api/built-in-nodes'),
		evaluator: 'unsafe',
		notes: 'createBatchProcessingWorkflow, run with UnsafeEvaluator as main.ts does.',
		build: () =>
			fromFlow(
				createFlow('batch-processing-demo')
					.node('prepareData', prepareBatchData)
					.batch('processItems', processBatchItem, { inputKey: 'batchItems', outputKey: 'processedItems' })
					.node('aggregateResults', aggregateBatchResults)
					.edge('prepareData', 'processItems')
					.edge('processItems', 'aggregateResults'),
			),
	},
	{
		name: 'ex-built-in-loop',
		source: src('core-api/built-in-nodes'),
		evaluator: 'unsafe',
		notes: 'createLoopProcessingWorkflow, run with UnsafeEvaluator as main.ts does.',
		build: () =>
			fromFlow(
				createFlow('loop-processing-demo')
					.node('setupLoop', setupLoopData)
					.node('executeIteration', loopIteration)
					.node('processResults', processLoopResults)
					.loop('counterLoop', {
						startNodeId: 'executeIteration',
						endNodeId: 'executeIteration',
						condition: 'loopData.counter < loopData.maxIterations',
					})
					.edge('setupLoop', 'executeIteration')
					.edge('executeIteration', 'processResults'),
			),
	},
	{
		name: 'ex-built-in-wait',
		source: src('core-api/built-in-nodes'),
		evaluator: 'unsafe',
		notes: 'createWaitWorkflow: despite its name it uses no built-in node (waitNode is a plain function sleeping 1000 ms, 0.2 s in the port). With the fixed clock the measured wait is 0 ms.',
		build: () =>
			fromFlow(
				createFlow('wait-sleep-demo')
					.node('startWait', demonstrateWaiting)
					.node('wait5Seconds', waitNode)
					.node('processAfterWait', processAfterWait)
					.edge('startWait', 'wait5Seconds')
					.edge('wait5Seconds', 'processAfterWait'),
			),
	},
	{
		name: 'ex-built-in-subflow',
		source: src('core-api/built-in-nodes'),
		evaluator: 'unsafe',
		initialContext: { inputData: { name: 'John Doe', email: 'john.doe@example.com', age: 30 } },
		notes: 'createSubflowWorkflow: subflow nodes pushed into the blueprint by hand, as the example does (subflow blueprints in subflow-*.json).',
		build: () => {
			const validation = createFlow('validation-subflow').node('validate', validateData)
			const enrichment = createFlow('enrichment-subflow').node('enrich', enrichData)
			const flow = createFlow('subflow-demo')
				.node('startMain', mainWorkflowStart)
				.node('processResults', processSubflowResults)
				.edge('startMain', 'validationSubflow')
				.edge('startMain', 'enrichmentSubflow')
				.edge('validationSubflow', 'processResults')
				.edge('enrichmentSubflow', 'processResults')
			const blueprint = flow.toBlueprint()
			blueprint.nodes.push({
				id: 'validationSubflow',
				uses: 'subflow',
				params: { blueprintId: 'validation-subflow', inputs: { inputData: 'inputData' }, outputs: { validationResults: 'validate' } },
			})
			blueprint.nodes.push({
				id: 'enrichmentSubflow',
				uses: 'subflow',
				params: { blueprintId: 'enrichment-subflow', inputs: { inputData: 'inputData' }, outputs: { enrichedData: 'enrich' } },
			})
			return {
				blueprint,
				subflows: { 'validation-subflow': validation.toBlueprint(), 'enrichment-subflow': enrichment.toBlueprint() },
				functionRegistry: new Map([
					...flow.getFunctionRegistry(),
					...validation.getFunctionRegistry(),
					...enrichment.getFunctionRegistry(),
				]),
			}
		},
	},
	{
		name: 'ex-context-basic',
		source: src('core-api/context-state-management'),
		evaluator: 'property',
		initialContext: {
			input: { id: 'user-123', name: 'Alice Cooper', email: 'alice@example.com', department: 'engineering' },
		},
		notes: "createBasicContextWorkflow with main.ts's test data. finalizeContext sets intermediateData to null (a real null, kept in expected.json).",
		build: () =>
			fromFlow(
				createFlow('basic-context-management')
					.node('readData', readInitialData)
					.node('checkData', checkExistingData)
					.node('transformData', transformData)
					.node('accumulateResults', accumulateResults)
					.node('finalizeContext', finalizeContext)
					.edge('readData', 'checkData')
					.edge('checkData', 'transformData')
					.edge('transformData', 'accumulateResults')
					.edge('accumulateResults', 'finalizeContext'),
			),
	},
	{
		name: 'ex-context-advanced',
		source: src('core-api/context-state-management'),
		evaluator: 'property',
		initialContext: {},
		notes: 'createAdvancedContextWorkflow.',
		build: () =>
			fromFlow(
				createFlow('advanced-context-patterns')
					.node('createNested', createNestedStructure)
					.node('queryNested', queryNestedData)
					.edge('createNested', 'queryNested'),
			),
	},
	{
		name: 'ex-edge-transform-property',
		source: src('core-api/edge-transform'),
		evaluator: 'property',
		initialContext: { rawOrder: sampleOrder },
		notes: 'createPropertyExtractionWorkflow: an edge transform picks a nested field of the source output.',
		build: () =>
			fromFlow(
				createFlow('edge-transform-property')
					.node('fetchAndValidate', fetchAndValidate)
					.node('notifyWarehouse', notifyWarehouse)
					.edge('fetchAndValidate', 'notifyWarehouse', { transform: 'input.shipping.address' }),
			),
	},
	{
		name: 'ex-edge-transform-explicit-inputs',
		source: src('core-api/edge-transform'),
		evaluator: 'property',
		initialContext: { rawOrder: sampleOrder },
		notes: 'createExplicitInputsWorkflow: a node with `inputs` naming another node; the edge transform applies to that node\'s output.',
		build: () =>
			fromFlow(
				createFlow('edge-transform-explicit-inputs')
					.node('enrichOrder', enrichOrder)
					.node('parseOrder', parseOrder)
					.node('applyPricing', applyPricing, { inputs: 'enrichOrder' })
					.edge('enrichOrder', 'parseOrder')
					.edge('parseOrder', 'applyPricing', { transform: 'input.loyaltyDiscount' }),
			),
	},
	{
		name: 'ex-function-class-nodes',
		source: src('core-api/function-class-nodes'),
		evaluator: 'property',
		initialContext: {
			user: { name: 'Sarah Chen', email: 'sarah.chen@example.com', age: 32, preferences: ['tech', 'design', 'music'] },
		},
		notes: 'Function nodes and BaseNode classes (registered under their class names); the classes become plain run(ctx) functions in the port.',
		build: () =>
			fromFlow(
				createFlow('function-class-nodes-demo')
					.node('validateEmail', validateEmail)
					.node('calculateUserScore', calculateUserScore)
					.node('enrichProfile', UserProfileEnricher)
					.node('sendNotifications', NotificationSender)
					.edge('validateEmail', 'calculateUserScore')
					.edge('calculateUserScore', 'enrichProfile')
					.edge('enrichProfile', 'sendNotifications'),
			),
	},
	{
		name: 'ex-custom-logging-basic',
		source: src('middleware/custom-logging'),
		evaluator: 'property',
		notes: `createBasicLoggingWorkflow (createStructuredLoggingWorkflow is the same graph and functions). ${mwNote('logging')}`,
		build: () =>
			fromFlow(
				createFlow('basic-logging-demo')
					.node('prepareData', prepareData)
					.node('processData', processData)
					.node('finalize', finalize)
					.edge('prepareData', 'processData')
					.edge('processData', 'finalize'),
			),
	},
	{
		name: 'ex-custom-logging-error',
		source: src('middleware/custom-logging'),
		evaluator: 'property',
		notes: `createErrorLoggingWorkflow: one node that throws; the flow fails. ${mwNote('logging')}`,
		build: () => fromFlow(createFlow('error-logging-demo').node('failingNode', failingNode)),
	},
	{
		name: 'ex-db-transactions-success',
		source: src('middleware/db-transactions'),
		evaluator: 'property',
		notes: `createSuccessfulTransactionWorkflow. Date.now() is the fixed clock (1704067200000) in both. ${mwNote('transaction')}`,
		build: () =>
			fromFlow(
				createFlow('successful-db-transaction')
					.node('beginTransaction', beginTransaction)
					.node('insertUser', insertUser)
					.node('updateUser', updateUser)
					.node('commitTransaction', commitTransaction)
					.edge('beginTransaction', 'insertUser')
					.edge('insertUser', 'updateUser')
					.edge('updateUser', 'commitTransaction'),
			),
	},
	{
		name: 'ex-db-transactions-failing',
		source: src('middleware/db-transactions'),
		evaluator: 'property',
		notes: `createFailingTransactionWorkflow: the last node throws; the flow fails with the earlier writes kept. ${mwNote('transaction')}`,
		build: () =>
			fromFlow(
				createFlow('failing-db-transaction')
					.node('beginTransaction', beginTransaction)
					.node('insertUser', insertUser)
					.node('failingOperation', failingOperation)
					.edge('beginTransaction', 'insertUser')
					.edge('insertUser', 'failingOperation'),
			),
	},
	{
		name: 'ex-performance-tuning',
		source: src('middleware/performance-tuning'),
		evaluator: 'property',
		notes: `createPerformanceTunedWorkflow with Math.random() drawn as 0.5 and 20 records instead of 1000 (1000 records make each context write about 40 kB, over the cluster's 4096-byte result limit; the local runner has the same limit by default). ${mwNote('performance')}`,
		build: () =>
			fromFlow(
				createFlow('performance-tuned-workflow')
					.node('loadData', loadData)
					.node('processBatch', processBatch)
					.node('validateResults', validateResults)
					.node('generateReport', generateReport)
					.edge('loadData', 'processBatch')
					.edge('processBatch', 'validateResults')
					.edge('validateResults', 'generateReport'),
			),
	},
	{
		name: 'ex-error-handling-retry',
		source: src('reliability/error-handling'),
		evaluator: 'property',
		notes: `createRetryWorkflow with Math.random() drawn as 0.5 (the operation succeeds). ${mwNote('a retry')}`,
		build: () => fromFlow(createFlow('retry-workflow').node('unstableOperation', unstableOperation)),
	},
	{
		name: 'ex-error-handling-recovery',
		source: src('reliability/error-handling'),
		evaluator: 'property',
		notes: `createErrorHandlingWorkflow: criticalOperation always throws, so recoveryOperation never runs and the flow fails. ${mwNote('an error-handling')}`,
		build: () =>
			fromFlow(
				createFlow('error-handling-workflow')
					.node('criticalOperation', criticalOperation)
					.node('recoveryOperation', recoveryOperation)
					.edge('criticalOperation', 'recoveryOperation'),
			),
	},
	{
		name: 'ex-fallback-cascading',
		source: src('reliability/fallback-strategies'),
		evaluator: 'property',
		notes: `createCascadingFallbackWorkflow with Math.random() drawn as 0.9 for the primary (it fails) and 0.5 for the others; without the example's middleware the failure stops the chain. Delays 300/500 ms are 0.2 s in the port. ${mwNote('a cascading-fallback')}`,
		build: () =>
			fromFlow(
				createFlow('cascading-fallback-workflow')
					.node('primaryService', primaryService)
					.node('secondaryService', secondaryService)
					.node('tertiaryService', tertiaryService)
					.node('processResponse', processResponse)
					.edge('primaryService', 'secondaryService')
					.edge('secondaryService', 'tertiaryService')
					.edge('tertiaryService', 'processResponse'),
			),
	},
	{
		name: 'ex-fallback-parallel',
		source: src('reliability/fallback-strategies'),
		evaluator: 'property',
		notes: `createParallelFallbackWorkflow with Math.random() drawn as 0.9 for the primary (it fails) and 0.5 for the secondary: the secondary branch still runs, processResponse (joining both) does not, the flow fails. Delay 300 ms is 0.2 s in the port. ${mwNote('a fallback')}`,
		build: () =>
			fromFlow(
				createFlow('parallel-fallback-workflow')
					.node('primaryService', primaryService)
					.node('secondaryService', secondaryService)
					.node('processResponse', processResponse)
					.edge('primaryService', 'processResponse')
					.edge('secondaryService', 'processResponse'),
			),
	},
	{
		name: 'ex-retry-fixed-delay',
		source: src('reliability/retry-patterns'),
		evaluator: 'property',
		notes: `createFixedDelayRetryWorkflow with Math.random() drawn as 0.2 (succeeds). ${mwNote('a fixed-delay retry')}`,
		build: () => fromFlow(createFlow('fixed-delay-retry-workflow').node('unreliableOperation', unreliableOperation)),
	},
	{
		name: 'ex-retry-exponential-backoff',
		source: src('reliability/retry-patterns'),
		evaluator: 'property',
		notes: `createExponentialBackoffRetryWorkflow with Math.random() drawn as 0.5 (fails; no retries in the blueprint). ${mwNote('an exponential-backoff retry')}`,
		build: () => fromFlow(createFlow('exponential-backoff-retry-workflow').node('criticalTask', criticalTask)),
	},
	{
		name: 'ex-retry-circuit-breaker',
		source: src('reliability/retry-patterns'),
		evaluator: 'property',
		notes: `createCircuitBreakerWorkflow with Math.random() drawn as 0.2 then 0.5 (both succeed). ${mwNote('a circuit-breaker')}`,
		build: () =>
			fromFlow(
				createFlow('circuit-breaker-workflow')
					.node('unreliableOperation', unreliableOperation)
					.node('backupOperation', backupOperation)
					.edge('unreliableOperation', 'backupOperation'),
			),
	},
	{
		name: 'ex-interactive-debugging',
		source: src('tooling/interactive-debugging'),
		evaluator: 'property',
		notes: `createInteractiveDebuggingWorkflow. ${mwNote('a debugging')}`,
		build: () =>
			fromFlow(
				createFlow('interactive-debugging-workflow')
					.node('initializeDebug', initializeDebug)
					.node('processStep', processStep)
					.node('checkCondition', checkCondition)
					.node('finalizeDebug', finalizeDebug)
					.edge('initializeDebug', 'processStep')
					.edge('processStep', 'checkCondition')
					.edge('checkCondition', 'finalizeDebug'),
			),
	},
	{
		name: 'ex-static-analysis-diagrams',
		source: src('tooling/static-analysis-diagrams'),
		evaluator: 'property',
		notes: `createStaticAnalysisDiagramsWorkflow, given its own blueprint as the \`workflow\` context key, as main.ts does. ${mwNote('a pass-through')}`,
		build: () => {
			// main.ts builds the sample first, then the workflow it runs (uses keys depend on order).
			const sample = createStaticAnalysisDiagramsWorkflow().toBlueprint()
			const flow = createStaticAnalysisDiagramsWorkflow()
			return { ...fromFlow(flow), initialContext: { workflow: sample } }
		},
	},
]
