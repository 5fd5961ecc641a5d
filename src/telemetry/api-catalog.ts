// The table from Windows API name to category and behavioural effect, used by the importers to
// fill call-level telemetry and by the adapter's API-category features. Rules are tried in order;
// the first match wins. A/W/Ex suffixes and Nt/Zw/Rtl prefixes are matched by the patterns.

import type { ApiCategory } from '../messages/telemetry.ts';

/** What one call contributes to the seed's aggregate telemetry fields. */
export type ApiEffect =
  | 'file-read'
  | 'file-write'
  | 'file-delete'
  | 'network-connection'
  | 'bytes-sent'
  | 'bytes-received'
  | 'child-process'
  | 'registry-modification'
  | 'privilege-escalation'
  | 'code-injection';

/** [pattern, category] — order matters: specific before general. */
export const CATEGORY_RULES: readonly (readonly [RegExp, ApiCategory])[] = [
  [
    /^(Nt|Zw)?(Open|Create|Delete|Query|Set|Enumerate|Save|Load|Notify|Rename|Flush)(Multiple)?(Value)?Key|^(Nt)?(Query|Set|Delete|Enumerate)ValueKey|^Reg[A-Z]/,
    'registry',
  ],
  [
    /^(Crypt|BCrypt|NCrypt|Cert|CryptHash)|^(Encrypt|Decrypt)Message|^(Rtl)?(Compress|Decompress)Buffer/,
    'crypto',
  ],
  [
    /^(Open|Create|Delete|Start|Control|Change|Query|Enum)(Service|SCManager)|^EnumServicesStatus|^StartService|^ControlService|^DeleteService|^OpenSCManager/,
    'services',
  ],
  [
    /^(WSA|Internet|Http|Ftp|URLDownload|Dns|Net[A-Z]|WinHttp|ObtainUserAgent|DeleteUrlCacheEntry|GetAdapters|GetBestInterface)|^(connect|send|sendto|recv|recvfrom|socket|bind|listen|accept|select|closesocket|shutdown|gethostbyname|getaddrinfo|GetAddrInfo|getsockname|setsockopt|ioctlsocket)/,
    'network',
  ],
  [
    /^(Nt|Zw)?(Allocate|Free|Protect|Read|Write|Query)VirtualMemory|^Virtual(Alloc|Free|Protect)|^(Read|Write)ProcessMemory|^(Nt)?(Map|Unmap)ViewOfSection|^(Nt)?(Create|Open)Section|^GlobalMemoryStatus|^(Crypt)?(Protect|Unprotect)Memory|^Heap/,
    'memory',
  ],
  [
    /^(Nt|Zw)?(Create|Open|Terminate|Suspend|Resume)(User)?(Process|Thread)|^CreateProcess|^CreateRemoteThread|^(Nt|Rtl)?CreateUserThread|^NtCreateThreadEx|^(Nt)?(Get|Set)ContextThread|^(Nt)?QueueApcThread|^ShellExecute|^WinExec|^system$|^(Process|Thread|Module)32|^CreateToolhelp32Snapshot|^(Create|Assign).*JobObject|^SetInformationJobObject|^ExitProcess|^NtDuplicateObject|^IsDebuggerPresent|^OutputDebugString/,
    'process',
  ],
  [
    /^(MessageBox|FindWindow|EnumWindows|GetForegroundWindow|SetWindowsHook|UnhookWindowsHook|GetAsyncKeyState|GetKeyState|GetKeyboardState|GetCursorPos|DrawText|SendNotifyMessage|RegisterHotKey|TaskDialog|GetSystemMetrics|WriteConsole|SetStdHandle)/,
    'ui',
  ],
  [
    /^(Nt|Zw)?(Create|Open|Read|Write|Delete|Query|Set)(Information|FullAttributes|Attributes|Directory)?File|^(Copy|Move|Delete|Find|Search)File|^(Get|Set)File|^(Create|Remove)Directory|^(Get|Set)(Temp|Short|Long)Path|^GetSystem(Windows)?Directory|^GetWindowsDirectory|^SetEndOfFile|^GetDiskFree|^NtQueryDirectoryFile|^NtDeviceIoControlFile|^DeviceIoControl|^SearchPath|^SHGet|^FindFirst|^ReadCabinetState|^GetVolume/,
    'file',
  ],
  [
    /^(Nt|Zw)?(Create|Open|Release)(Mutant|Mutex|Event|Semaphore)|^WaitFor|^NtDelayExecution|^Sleep/,
    'synchronization',
  ],
  [
    /^(Ldr|Load|Get|Set|Co|Ole|Uuid|Lookup|Exit|Is|Rtl|Nt|time|IWbem|CreateActCtx|SizeofResource|FindResource|LoadResource|__)/,
    'system',
  ],
];

/** [pattern, effects] — every matching rule contributes. */
export const EFFECT_RULES: readonly (readonly [RegExp, readonly ApiEffect[]])[] = [
  [/^(Nt|Zw)?ReadFile$|^ReadFileEx$/, ['file-read']],
  [
    /^(Nt|Zw)?WriteFile$|^WriteFileEx$|^SetEndOfFile$|^(Nt)?SetInformationFile$|^SetFile(Attributes|Time|InformationByHandle)|^(Nt)?CreateFile|^CreateDirectory|^MoveFile/,
    ['file-write'],
  ],
  [/^CopyFile/, ['file-read', 'file-write']],
  [/^(Nt|Zw)?DeleteFile|^RemoveDirectory/, ['file-delete']],
  [
    /^(connect|WSAConnect|accept|WSAAccept)$|^InternetConnect|^InternetOpenUrl|^URLDownloadToFile|^HttpSendRequest|^WinHttpConnect/,
    ['network-connection'],
  ],
  [/^(send|sendto|WSASend|WSASendTo)$|^InternetWriteFile/, ['bytes-sent']],
  [/^(recv|recvfrom|WSARecv|WSARecvFrom)$|^InternetReadFile/, ['bytes-received']],
  [
    /^CreateProcess|^NtCreateUserProcess|^(Nt)?CreateProcessEx?$|^ShellExecute|^WinExec|^system$/,
    ['child-process'],
  ],
  [
    /^Reg(Set|Create|Delete)|^(Nt|Zw)?(SetValue|Create|Delete|DeleteValue|Save|Load|Rename)Key|^NtSaveKeyEx/,
    ['registry-modification'],
  ],
  [
    /^AdjustTokenPrivileges|^LookupPrivilegeValue|^(Nt)?LoadDriver|^SetTokenInformation|^ImpersonateLoggedOnUser/,
    ['privilege-escalation'],
  ],
  [
    /^(Write|Nt)?WriteProcessMemory|^NtWriteVirtualMemory|^CreateRemoteThread|^(Nt)?QueueApcThread|^QueueUserAPC|^SetWindowsHookEx|^(Nt)?SetContextThread|^RtlCreateUserThread|^NtCreateThreadEx/,
    ['code-injection'],
  ],
];

/** CAPE/Cuckoo report categories → ours. */
export const CAPE_CATEGORY: Readonly<Record<string, ApiCategory>> = {
  filesystem: 'file',
  file: 'file',
  registry: 'registry',
  process: 'process',
  threading: 'process',
  network: 'network',
  socket: 'network',
  browser: 'network',
  netapi: 'network',
  misc: 'other',
  system: 'system',
  device: 'system',
  hooking: 'process',
  crypto: 'crypto',
  services: 'services',
  synchronisation: 'synchronization',
  synchronization: 'synchronization',
  ui: 'ui',
  windows: 'ui',
  resource: 'system',
  com: 'system',
  __notification__: 'other',
};

const categoryCache = new Map<string, ApiCategory>();

export function apiCategory(name: string): ApiCategory {
  let c = categoryCache.get(name);
  if (c === undefined) {
    c = CATEGORY_RULES.find(([re]) => re.test(name))?.[1] ?? 'other';
    if (categoryCache.size < 100_000) categoryCache.set(name, c);
  }
  return c;
}

const effectCache = new Map<string, readonly ApiEffect[]>();

export function apiEffects(name: string): readonly ApiEffect[] {
  let e = effectCache.get(name);
  if (e === undefined) {
    e = EFFECT_RULES.filter(([re]) => re.test(name)).flatMap(([, fx]) => fx);
    if (effectCache.size < 100_000) effectCache.set(name, e);
  }
  return e;
}
