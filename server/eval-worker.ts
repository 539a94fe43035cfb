// The evaluation thread's entry (a worker_threads Worker started by server/eval-thread.ts): it
// keeps each dataset's fixed evaluation examples and answers one evaluation at a time. Nothing
// here knows of runs or rounds; what to evaluate and when is the main thread's business.
import { setPriority } from 'node:os';
import { parentPort } from 'node:worker_threads';
import { describeModel } from '../shared/layers/sequence.ts';
import { Evaluator } from './evaluator.ts';
import type { FromEvalThread, ToEvalThread } from './eval-thread.ts';

// The lowest priority for this thread alone (on Linux a thread is its own scheduling entity): on
// a busy machine the event loop, which runs the rounds, gets the core first.
try {
  setPriority(19);
} catch {
  // Not allowed here: the evaluation then competes with the event loop as an equal.
}

const evaluators = new Map<string, Evaluator>();
const port = parentPort!;

port.on('message', (msg: ToEvalThread) => {
  if (msg.type === 'examples') {
    evaluators.set(msg.key, new Evaluator(msg.examples));
    return;
  }
  let reply: FromEvalThread;
  try {
    const evaluator = evaluators.get(msg.key);
    if (!evaluator) throw new Error(`no evaluation examples under "${msg.key}"`);
    const description = describeModel(msg.layers, msg.inputShape);
    reply = { type: 'result', id: msg.id, evaluation: evaluator.evaluate({ description }, msg.params) };
  } catch (err) {
    reply = { type: 'error', id: msg.id, message: (err as Error).message };
  }
  port.postMessage(reply);
});
