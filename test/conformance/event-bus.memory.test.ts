import { InProcessBus } from '../../ingest/bus/in-process-bus.js';
import { runEventBusConformance } from './event-bus.js';

runEventBusConformance('InProcessBus', async () => {
  const bus = new InProcessBus({ partitions: 4, retryDelayMs: 10 });
  return { bus, partitions: 4, cleanup: () => bus.close() };
});
