// The training report a person opens in a browser: one self-contained HTML file with SVG line
// charts of reward, loss, epsilon and detection rates over training, and the evaluation table.

import type { DetectionReport } from './evaluate.ts';
import type { TrainPoint } from './train.ts';

const esc = (s: string) =>
  s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);

function chart(
  title: string,
  xs: readonly number[],
  series: readonly { name: string; ys: readonly number[]; color: string }[],
): string {
  const W = 520;
  const H = 200;
  const pad = 40;
  const all = series.flatMap((s) => s.ys.filter(Number.isFinite));
  const lo = Math.min(0, ...all);
  const hi = Math.max(lo + 1e-9, ...all);
  const x0 = xs[0] ?? 0;
  const x1 = Math.max(x0 + 1, xs.at(-1) ?? 1);
  const px = (x: number) => pad + ((x - x0) / (x1 - x0)) * (W - 2 * pad);
  const py = (y: number) => H - pad + ((lo - y) / (hi - lo)) * (H - 2 * pad);
  const lines = series
    .map((s) => {
      const pts = s.ys
        .map((y, i) => (Number.isFinite(y) ? `${px(xs[i]!).toFixed(1)},${py(y).toFixed(1)}` : ''))
        .filter(Boolean)
        .join(' ');
      return `<polyline fill="none" stroke="${s.color}" stroke-width="2" points="${pts}"><title>${esc(s.name)}</title></polyline>`;
    })
    .join('');
  const legend = series
    .map(
      (s, i) =>
        `<text x="${pad + i * 140}" y="16" fill="${s.color}" font-size="12">■ ${esc(s.name)}</text>`,
    )
    .join('');
  return `<figure><figcaption>${esc(title)}</figcaption><svg viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${esc(title)}">
<rect x="0" y="0" width="${W}" height="${H}" fill="#fff"/>${legend}
<line x1="${pad}" y1="${H - pad}" x2="${W - pad}" y2="${H - pad}" stroke="#999"/><line x1="${pad}" y1="${pad}" x2="${pad}" y2="${H - pad}" stroke="#999"/>
<text x="4" y="${py(hi) + 4}" font-size="10">${hi.toPrecision(3)}</text><text x="4" y="${py(lo) + 4}" font-size="10">${lo.toPrecision(3)}</text>
<text x="${W - pad - 40}" y="${H - 8}" font-size="10">episode ${x1}</text>${lines}</svg></figure>`;
}

function table(rows: readonly (readonly [string, DetectionReport])[]): string {
  const cell = (v: number) => (Number.isFinite(v) ? v.toFixed(3) : '—');
  const body = rows
    .map(
      ([name, r]) =>
        `<tr><td>${esc(name)}</td><td>${r.episodes}</td><td>${cell(r.auc)}</td><td>${cell(r.balancedAccuracy)}</td><td>${cell(r.tprAt1PctFpr)}</td><td>${r.meanEventsBeforeDecision.toFixed(1)}</td><td>${r.confusion.tp}/${r.confusion.fp}/${r.confusion.tn}/${r.confusion.fn}</td></tr>`,
    )
    .join('');
  return `<table><thead><tr><th>policy</th><th>episodes</th><th>AUC</th><th>balanced acc.</th><th>TPR @1% FPR</th><th>events before decision</th><th>TP/FP/TN/FN</th></tr></thead><tbody>${body}</tbody></table>`;
}

export function trainingReportHtml(opts: {
  readonly title: string;
  readonly history: readonly TrainPoint[];
  readonly evaluation?: readonly (readonly [string, DetectionReport])[];
  readonly facts: Readonly<Record<string, string | number>>;
}): string {
  const xs = opts.history.map((p) => p.episode);
  const facts = Object.entries(opts.facts)
    .map(([k, v]) => `<tr><th>${esc(k)}</th><td>${esc(String(v))}</td></tr>`)
    .join('');
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${esc(opts.title)}</title>
<style>body{font:14px system-ui,sans-serif;margin:2em;max-width:1100px}figure{display:inline-block;margin:0 1em 1em 0}figcaption{font-weight:600}table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}</style></head>
<body><h1>${esc(opts.title)}</h1><table>${facts}</table>
${chart('Average reward (last 100 episodes)', xs, [{ name: 'reward', ys: opts.history.map((p) => p.averageReward), color: '#1f77b4' }])}
${chart('Training loss', xs, [{ name: 'loss', ys: opts.history.map((p) => p.loss), color: '#d62728' }])}
${chart('Exploration epsilon', xs, [{ name: 'epsilon', ys: opts.history.map((p) => p.epsilon), color: '#2ca02c' }])}
${chart('Stage-1 detection rates (last 100 episodes)', xs, [
  { name: 'true-positive rate', ys: opts.history.map((p) => p.tpr), color: '#9467bd' },
  { name: 'false-positive rate', ys: opts.history.map((p) => p.fpr), color: '#ff7f0e' },
])}
${opts.evaluation ? `<h2>Evaluation</h2>${table(opts.evaluation)}` : ''}
</body></html>
`;
}
