// Test-time IAM policy evaluator: an oracle independent of TrustGate's own code.
//
// Reads ONE JSON array of cases on stdin, evaluates every case in this one process with
// @cloud-copilot/iam-simulate (AGPL-3.0, test-time only: never bundle it into the Lambda layer),
// and writes ONE JSON array of results on stdout, in the same order.
//
// Case:   {id, principal, action, resource, identity_policies, resource_policy, resource_account, context}
// Result: {id, decision: "Allowed" | "ImplicitlyDenied" | "ExplicitlyDenied" | null, error: string | null,
//          ignored_context_keys: [string]}
//
// Semantics worth knowing (iam-simulate 0.1.173):
// * Nothing is derived from the principal: aws:PrincipalArn, aws:userid, aws:username, aws:PrincipalAccount,
//   aws:CurrentTime, aws:TokenIssueTime ... exist only if the case's context gives them. A condition on an
//   absent key does not match (a policy variable naming an absent key never matches), as in AWS.
// * Context keys that do not apply to the action are dropped by the library (reported in
//   ignored_context_keys). Dropping another service's key (sts:RoleSessionName on s3:ListAllMyBuckets) is
//   what AWS does too; dropping a global (aws:) key or one of the action's own service is almost surely a
//   typo in the test, so that is reported as an error.
// * resource_account null means "the caller's own account" (e.g. a wildcard-only action on "*").
// * Simulation mode is Strict: the request is evaluated exactly as given, no "Discovery" of conditions.
// * Where the library is known to depart from AWS (see libraryHazards) the case is an error, not an answer.
import { isConditionKeyArray, runSimulation, typeForContextKey } from '@cloud-copilot/iam-simulate'

// Date.parse reads an ISO date-time without a zone as local time; pin it so results never depend on the host.
process.env.TZ = 'UTC'

const SIMULATION_OPTIONS = { simulationMode: 'Strict' }

/** A problem with the case itself (reported by message, without a stack trace). */
class CaseError extends Error {}

function readStdin() {
  return new Promise((resolve, reject) => {
    const chunks = []
    process.stdin.on('data', (chunk) => chunks.push(chunk))
    process.stdin.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')))
    process.stdin.on('error', reject)
  })
}

function accountOf(arn) {
  const parts = String(arn).split(':')
  return parts.length >= 6 && parts[0] === 'arn' && parts[4] ? parts[4] : undefined
}

function checkCase(c) {
  if (c === null || typeof c !== 'object' || Array.isArray(c)) throw new CaseError('a case must be a JSON object')
  for (const field of ['principal', 'action', 'resource']) {
    if (typeof c[field] !== 'string' || c[field] === '') throw new CaseError(`case field ${field} must be a non-empty string`)
  }
  if (!Array.isArray(c.identity_policies)) throw new CaseError('case field identity_policies must be a list')
  const context = c.context ?? {}
  if (typeof context !== 'object' || Array.isArray(context)) throw new CaseError('case field context must be an object')
  for (const [key, value] of Object.entries(context)) {
    const ok = typeof value === 'string' || (Array.isArray(value) && value.every((v) => typeof v === 'string'))
    if (!ok) throw new CaseError(`context value for ${key} must be a string or a list of strings`)
  }
  return context
}

function simulationFor(c, context) {
  const resourceAccount = c.resource_account ?? accountOf(c.principal)
  if (!resourceAccount) throw new CaseError(`no resource_account given and none in principal ${c.principal}`)
  return {
    request: {
      principal: c.principal,
      action: c.action,
      resource: { resource: c.resource, accountId: resourceAccount },
      contextVariables: context
    },
    identityPolicies: c.identity_policies.map((policy, i) => ({ name: `identity-${i}`, policy })),
    serviceControlPolicies: [],
    resourceControlPolicies: [],
    resourcePolicy: c.resource_policy ?? undefined
  }
}

function statementsOf(policy) {
  if (policy === null || typeof policy !== 'object') return []
  const statements = policy.Statement
  if (Array.isArray(statements)) return statements.filter((s) => s !== null && typeof s === 'object')
  return statements !== null && typeof statements === 'object' ? [statements] : []
}

function asList(value) {
  return Array.isArray(value) ? value : [value]
}

const EPOCH = /^\d+$/
const OPERATORS = new Set(
  [
    'StringEquals', 'StringNotEquals', 'StringEqualsIgnoreCase', 'StringNotEqualsIgnoreCase', 'StringLike',
    'StringNotLike', 'NumericEquals', 'NumericNotEquals', 'NumericLessThan', 'NumericLessThanEquals',
    'NumericGreaterThan', 'NumericGreaterThanEquals', 'DateEquals', 'DateNotEquals', 'DateLessThan',
    'DateLessThanEquals', 'DateGreaterThan', 'DateGreaterThanEquals', 'Bool', 'BinaryEquals', 'IpAddress',
    'NotIpAddress', 'ArnEquals', 'ArnLike', 'ArnNotEquals', 'ArnNotLike'
  ].map((name) => name.toLowerCase())
)

function knownOperator(operator) {
  const base = operator.replace(/^(ForAnyValue|ForAllValues):/i, '').toLowerCase()
  if (base === 'null') return true
  return OPERATORS.has(base.endsWith('ifexists') ? base.slice(0, -'ifexists'.length) : base)
}

// Where iam-simulate 0.1.173 departs from AWS, refuse the case rather than answer wrongly:
// * Policy variables are substituted whatever the policy's Version; AWS substitutes them only under
//   Version 2012-10-17 (otherwise "${aws:username}" is a literal string).
// * Date operators read an all-digit value as epoch *milliseconds*; AWS reads it as epoch seconds.
// * An unknown condition operator (a typo) passes its validation and simply never matches; IAM refuses the policy.
function libraryHazards(c, context) {
  const hazards = []
  const policies = [...c.identity_policies, ...(c.resource_policy ? [c.resource_policy] : [])]
  const contextByKey = new Map(Object.entries(context).map(([key, value]) => [key.toLowerCase(), value]))
  for (const policy of policies) {
    if (policy?.Version !== '2012-10-17' && JSON.stringify(policy).includes('${')) {
      hazards.push('a policy without "Version": "2012-10-17" uses ${...}: AWS reads that literally, iam-simulate would substitute it')
    }
    for (const statement of statementsOf(policy)) {
      for (const [operator, block] of Object.entries(statement.Condition ?? {})) {
        if (!knownOperator(operator)) {
          hazards.push(`unknown condition operator ${operator}: AWS refuses such a policy, iam-simulate never matches it`)
        }
        if (!/date/i.test(operator) || block === null || typeof block !== 'object') continue
        for (const [key, value] of Object.entries(block)) {
          const values = [...asList(value), ...asList(contextByKey.get(key.toLowerCase()) ?? [])]
          if (values.some((v) => EPOCH.test(String(v)))) {
            hazards.push(`${operator} on ${key} with an epoch value: use ISO 8601 (iam-simulate reads epoch seconds as milliseconds)`)
          }
        }
      }
    }
  }
  return [...new Set(hazards)]
}

function suspiciousIgnoredKeys(ignored, action) {
  const service = action.split(':')[0].toLowerCase()
  return ignored.filter((key) => {
    const prefix = key.split(':')[0].toLowerCase()
    return prefix === 'aws' || prefix === service
  })
}

// The library keeps only the first element of a list given for a single-valued key (aws:userid, ...).
async function truncatedLists(context) {
  const truncated = []
  for (const [key, value] of Object.entries(context)) {
    if (!Array.isArray(value) || value.length === 1) continue
    let type
    try {
      type = await typeForContextKey(key.toLowerCase())
    } catch {
      continue // an unknown key: dropped later and reported as ignored
    }
    if (!isConditionKeyArray(type)) truncated.push(key)
  }
  return truncated
}

async function evaluateCase(c) {
  const id = c && typeof c === 'object' ? (c.id ?? null) : null
  try {
    const context = checkCase(c)
    const hazards = libraryHazards(c, context)
    for (const key of await truncatedLists(context)) {
      hazards.push(`${key} is single-valued but the context gives it a list (iam-simulate would keep the first item)`)
    }
    if (hazards.length > 0) {
      return { id, decision: null, error: `not evaluable faithfully: ${hazards.join('; ')}`, ignored_context_keys: [] }
    }
    const response = await runSimulation(simulationFor(c, context), SIMULATION_OPTIONS)
    if (response.resultType === 'error') {
      return { id, decision: null, error: `simulation refused the case: ${JSON.stringify(response.errors)}`, ignored_context_keys: [] }
    }
    const ignored =
      response.resultType === 'single'
        ? (response.result.ignoredContextKeys ?? [])
        : [...new Set(response.results.flatMap((r) => r.ignoredContextKeys ?? []))]
    const suspicious = suspiciousIgnoredKeys(ignored, c.action)
    if (suspicious.length > 0) {
      return {
        id,
        decision: null,
        error: `context keys not valid for ${c.action} were dropped: ${suspicious.join(', ')}`,
        ignored_context_keys: ignored
      }
    }
    return { id, decision: response.overallResult, error: null, ignored_context_keys: ignored }
  } catch (err) {
    return { id, decision: null, error: err instanceof CaseError ? `bad case: ${err.message}` : `evaluation failed: ${err?.stack ?? err}`, ignored_context_keys: [] }
  }
}

async function main() {
  let cases
  try {
    cases = JSON.parse(await readStdin())
  } catch (err) {
    process.stderr.write(`evaluate.mjs: stdin is not JSON: ${err}\n`)
    process.exit(2)
  }
  if (!Array.isArray(cases)) {
    process.stderr.write('evaluate.mjs: stdin must be a JSON array of cases\n')
    process.exit(2)
  }
  const results = []
  for (const c of cases) results.push(await evaluateCase(c))
  process.stdout.write(JSON.stringify(results))
}

await main()
