// Shared-memory layout of the inference pool. Each worker owns one request ring (adapter → worker)
// and one response ring (worker → dispatcher), both SPSC rings (runtime/shared/spsc-ring.ts).
//
//   request slot (2 + dim words)            response slot (5 + 6 words)
//   +-----------+-------+---------------+   +-----------+--------+---------+--------+------------+-------------+
//   | requestId | spare | state[0..dim) |   | requestId | action | version | source | confidence | q[0..6)     |
//   +-----------+-------+---------------+   +-----------+--------+---------+--------+------------+-------------+
//     Int32       Int32   Float32             Int32       Int32    Int32     Int32    Float32      Float32
//
//   control (Int32 words, one SAB for the pool):
//     0                ACTIVE_VERSION   id of the model version every new batch must use (0 = rules);
//                                       a hot reload is one Atomics.store here, after every worker
//                                       prepared the new session (ONNX Runtime loads off the JS
//                                       thread, so workers keep serving while they prepare). The
//                                       previous version stays loaded, so a batch that read the old
//                                       id finishes on it.

export const REQ_ID = 0;
export const REQ_STATE = 2;
export const requestSlotWords = (dim: number) => REQ_STATE + dim;

export const RES_ID = 0;
export const RES_ACTION = 1;
export const RES_VERSION = 2;
export const RES_SOURCE = 3;
export const RES_CONFIDENCE = 4;
export const RES_Q = 5;
export const RESPONSE_SLOT_WORDS = RES_Q + 6;

export const SOURCE = { model: 0, rules: 1, exploration: 2 } as const;
export const SOURCE_NAMES = ['model', 'rules', 'exploration'] as const;

export const CTRL_ACTIVE = 0;
export const CONTROL_WORDS = 1;

/** The version id that means "the rule-based policy". */
export const RULES_VERSION = 0;
