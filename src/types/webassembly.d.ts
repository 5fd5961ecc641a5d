// The part of the WebAssembly JavaScript API that Warden uses (adam-kernel.ts). Node has it
// built in, but @types/node 20 does not declare it, and the DOM library would bring browser
// globals into a server codebase.

declare namespace WebAssembly {
  class Module {
    constructor(bytes: Uint8Array);
  }
  class Memory {
    readonly buffer: ArrayBuffer;
    grow(pages: number): number;
  }
  type ExportValue = Memory | ((...args: number[]) => unknown);
  class Instance {
    constructor(module: Module, imports?: Record<string, Record<string, unknown>>);
    readonly exports: Record<string, ExportValue>;
  }
}
