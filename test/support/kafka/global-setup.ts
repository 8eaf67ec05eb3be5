// vitest globalSetup: one shared Kafka broker for the run, started only when a test/kafka*.test.ts file is in it.
// Tests read the address with `inject('kafkaBootstrap')` (or process.env.REVOKESCOPE_TEST_KAFKA); an empty
// string plus `kafkaUnavailable` means Java/Maven are missing outside CI and the tests print why they skip.
import type { TestProject } from 'vitest/node';
import { BrokerUnavailable, start, stop, type BrokerHandle } from './broker.js';

declare module 'vitest' {
  export interface ProvidedContext {
    kafkaBootstrap: string;
    kafkaUnavailable: string;
  }
}


export default async function setup(project: TestProject): Promise<(() => Promise<void>) | void> {
  project.provide('kafkaBootstrap', '');
  project.provide('kafkaUnavailable', '');
  // The files of this run are not collected yet when global setup runs: the command line's file filters say which
  // (`vitest run test/wire.test.ts` needs no broker); with no filter the whole suite runs, Kafka tests included.
  const filters = process.argv.slice(2).filter((a) => !a.startsWith('-') && a !== 'run' && !a.includes('vitest'));
  if (filters.length > 0 && !filters.some((f) => /kafka(?!-spool)/.test(f))) return;
  if (process.env.REVOKESCOPE_TEST_KAFKA) {
    project.provide('kafkaBootstrap', process.env.REVOKESCOPE_TEST_KAFKA); // an external broker
    return;
  }
  let broker: BrokerHandle;
  const t0 = Date.now();
  try {
    broker = await start();
  } catch (err) {
    if (err instanceof BrokerUnavailable && err.exitCode === 4) {
      project.provide('kafkaUnavailable', err.message);
      return;
    }
    throw err;
  }
  console.log(`[kafka] broker ${broker.bootstrap} pid ${broker.pid} ready in ${Date.now() - t0} ms`);
  project.provide('kafkaBootstrap', broker.bootstrap);
  process.env.REVOKESCOPE_TEST_KAFKA = broker.bootstrap;
  return async () => {
    await stop(broker);
  };
}
