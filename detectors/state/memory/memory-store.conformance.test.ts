import { MemoryStateStore } from './memory-store.js';
import { runStateStoreConformance } from '../../../test/conformance/state-store.js';

// The reference itself: the hand-picked cases pin its semantics; the random runs check determinism.
runStateStoreConformance('MemoryStateStore', () => new MemoryStateStore());
