// pino-roll ships no types: the one function Warden calls (it returns a sonic-boom stream).
declare module 'pino-roll' {
  import type { DestinationStream } from 'pino';
  export default function roll(
    options: object,
  ): Promise<DestinationStream & { flushSync(): void; end(): void }>;
}
