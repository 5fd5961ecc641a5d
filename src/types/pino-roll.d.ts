// pino-roll ships no types: the one function Warden calls (it returns a sonic-boom stream, which
// reports a write the disk refuses as an 'error' event).
declare module 'pino-roll' {
  import type { EventEmitter } from 'node:events';
  import type { DestinationStream } from 'pino';
  export default function roll(
    options: object,
  ): Promise<
    DestinationStream & EventEmitter & { flushSync(): void; end(): void; destroy(): void }
  >;
}
