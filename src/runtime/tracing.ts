// OpenTelemetry traces: one trace per episode, with spans for each stage, each decision batch,
// each dispatch (retries as span events) and the database write (see docs/operations.md).
//
//   worker thread                                 main thread
//   actor → tracer → BatchSpanProcessor ──spans──▶ TraceHub → exporter (OTLP over HTTP, or the
//           (forwarding exporter, data port)                  in-memory one in tests)
//
// Actors in different threads join one trace through a W3C `traceparent` carried in the messages
// that cross threads (decisions, lifecycle events, trajectories). Off by default: enabled when the
// standard OTEL_* variables ask for OTLP export (or a test passes an exporter); when off, actors
// get the API's no-op tracer and pay nothing.

import {
  type Attributes,
  type Context,
  ROOT_CONTEXT,
  type Span,
  type SpanContext,
  type SpanKind,
  type SpanStatus,
  type Tracer,
  trace,
} from '@opentelemetry/api';
import { ExportResultCode, hrTimeDuration, parseTraceParent } from '@opentelemetry/core';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  BatchSpanProcessor,
  type ReadableSpan,
  type SpanExporter,
  TracerProvider,
} from '@opentelemetry/sdk-trace';

export type { Span, Tracer };

const SCOPE = { name: 'warden', version: '0.1.0' };

/** The tracer of a thread where tracing is off. */
export const NOOP_TRACER: Tracer = trace.getTracerProvider().getTracer(SCOPE.name);

/** `00-<trace id>-<span id>-<flags>`: how a span's context travels inside a message. */
export function traceparentOf(span: Span | undefined): string | undefined {
  if (!span) return undefined;
  const c = span.spanContext();
  if (!trace.isSpanContextValid(c)) return undefined;
  return `00-${c.traceId}-${c.spanId}-0${(c.traceFlags & 1).toString(16)}`;
}

/** A parent context from a traceparent (the root context when absent or malformed). */
export function parentFrom(traceparent: string | undefined): Context {
  const c = traceparent ? parseTraceParent(traceparent) : null;
  return c ? trace.setSpanContext(ROOT_CONTEXT, { ...c, isRemote: true }) : ROOT_CONTEXT;
}

/** A finished span as it crosses from a worker to main (structured-clone friendly). */
export interface WireSpan {
  readonly name: string;
  readonly kind: SpanKind;
  readonly context: SpanContext;
  readonly parent: SpanContext | undefined;
  readonly startTime: [number, number];
  readonly endTime: [number, number];
  readonly status: SpanStatus;
  readonly attributes: Attributes;
  readonly events: { name: string; time: [number, number]; attributes?: Attributes }[];
  readonly thread: string;
}

function toWire(s: ReadableSpan, thread: string): WireSpan {
  return {
    name: s.name,
    kind: s.kind,
    context: { ...s.spanContext() },
    parent: s.parentSpanContext ? { ...s.parentSpanContext } : undefined,
    startTime: [...s.startTime],
    endTime: [...s.endTime],
    status: { ...s.status },
    attributes: { ...s.attributes },
    events: s.events.map((e) => ({
      name: e.name,
      time: [...e.time],
      ...(e.attributes ? { attributes: { ...e.attributes } } : {}),
    })),
    thread,
  };
}

/**
 * This thread's tracer when tracing is on: finished spans are batched and handed to `post`
 * (the worker's data port to main).
 */
export function workerTracing(
  thread: string,
  post: (spans: WireSpan[]) => void,
): { tracer: Tracer; shutdown(): Promise<void> } {
  const exporter: SpanExporter = {
    export(spans, done) {
      post(spans.map((s) => toWire(s, thread)));
      done({ code: ExportResultCode.SUCCESS });
    },
    shutdown: async () => undefined,
  };
  const provider = new TracerProvider({
    spanProcessors: [
      new BatchSpanProcessor({
        exporter,
        // Few, large hand-overs to main (which also routes every message between threads).
        scheduledDelayMillis: 1_000,
        maxQueueSize: 65_536,
        maxExportBatchSize: 16_384,
      }),
    ],
  });
  return {
    tracer: provider.getTracer(SCOPE.name, SCOPE.version),
    shutdown: () => provider.shutdown(), // flushes what is queued
  };
}

/** Main's side: spans from every worker, exported together with one resource. */
export class TraceHub {
  readonly #exporter: SpanExporter;
  readonly #resource = resourceFromAttributes({
    'service.name': process.env.OTEL_SERVICE_NAME ?? 'warden',
  });
  #received = 0;
  #failed = 0;

  constructor(exporter: SpanExporter) {
    this.#exporter = exporter;
  }

  get stats(): { received: number; failedExports: number } {
    return { received: this.#received, failedExports: this.#failed };
  }

  receive(spans: readonly WireSpan[]): void {
    this.#received += spans.length;
    const readable: ReadableSpan[] = spans.map((w) => ({
      name: w.name,
      kind: w.kind,
      spanContext: () => w.context,
      parentSpanContext: w.parent,
      startTime: w.startTime,
      endTime: w.endTime,
      status: w.status,
      attributes: { ...w.attributes, 'thread.name': w.thread },
      links: [],
      events: w.events,
      duration: hrTimeDuration(w.startTime, w.endTime),
      ended: true,
      resource: this.#resource,
      instrumentationScope: SCOPE,
      droppedAttributesCount: 0,
      droppedEventsCount: 0,
      droppedLinksCount: 0,
    }));
    this.#exporter.export(readable, (result) => {
      if (result.code !== ExportResultCode.SUCCESS) this.#failed += readable.length;
    });
  }

  async shutdown(): Promise<void> {
    await this.#exporter.forceFlush?.();
    await this.#exporter.shutdown();
  }
}

/**
 * The exporter the standard variables ask for: OTLP over HTTP when OTEL_TRACES_EXPORTER is
 * `otlp` or an OTLP endpoint is set (and OTEL_SDK_DISABLED is not `true`); otherwise none.
 */
export async function exporterFromEnv(
  env: NodeJS.ProcessEnv = process.env,
): Promise<SpanExporter | undefined> {
  if (env.OTEL_SDK_DISABLED === 'true') return undefined;
  const wanted =
    env.OTEL_TRACES_EXPORTER?.split(',').includes('otlp') ||
    (!env.OTEL_TRACES_EXPORTER &&
      Boolean(env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || env.OTEL_EXPORTER_OTLP_ENDPOINT));
  if (!wanted) return undefined;
  const { OTLPTraceExporter } = await import('@opentelemetry/exporter-trace-otlp-http');
  return new OTLPTraceExporter(); // endpoint, headers and timeout from OTEL_EXPORTER_OTLP_*
}
