// Decodes protobuf-encoded TelemetryEvent bytes (proto/warden/sandbox/v1/sandbox.proto) with the
// same limits and default counting as JSON input.

import protobuf from 'protobufjs';
import type { TelemetryEvent } from '../messages/telemetry.ts';
import { InputTooLargeError, InvalidInputError } from '../runtime/errors.ts';
import { type ValidateOptions, validateTelemetry } from './telemetry.ts';

export const SANDBOX_PROTO = new URL('../../proto/warden/sandbox/v1/sandbox.proto', import.meta.url)
  .pathname;

let root: protobuf.Root | undefined;

export function sandboxProtoRoot(): protobuf.Root {
  root ??= protobuf.loadSync(SANDBOX_PROTO);
  return root;
}

export function decodeTelemetryProto(bytes: Uint8Array, opts: ValidateOptions): TelemetryEvent {
  if (bytes.byteLength > opts.limits.maxEventBytes) {
    opts.counter.addRejected('too-large');
    throw new InputTooLargeError(
      `telemetry message is ${bytes.byteLength} bytes; the limit is ${opts.limits.maxEventBytes} (telemetry.maxEventBytes)`,
    );
  }
  const type = sandboxProtoRoot().lookupType('warden.sandbox.v1.TelemetryEvent');
  let message: protobuf.Message;
  try {
    message = type.decode(bytes);
  } catch (error) {
    opts.counter.addRejected('not-protobuf');
    throw new InvalidInputError(
      `telemetry message is not a valid TelemetryEvent: ${(error as Error).message}`,
      {
        cause: error,
      },
    );
  }
  const object = type.toObject(message, {
    longs: Number,
    enums: Number,
    defaults: false,
    arrays: false,
  });
  return validateTelemetry(object, { ...opts, absentIsDefault: true });
}
