// The cube extension's text form, both ways: "(0.1,0.2,…)" ⇄ numbers. Cheaper than building or
// unpacking cubes in SQL per row.

export const cubeLiteral = (v: readonly number[]): string => `(${v.join(',')})`;

export const parseCube = (text: string): number[] => text.slice(1, -1).split(',').map(Number);
