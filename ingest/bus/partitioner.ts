/**
 * Partition of a key: FNV-1a over the UTF-16 code units, modulo the partition
 * count. Stable across processes and restarts, so one agent always lands on one partition.
 */
export function partitionForKey(key: string, partitions: number): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    hash ^= key.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) % partitions;
}
