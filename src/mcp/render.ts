// The text rendering of a tool's result, for a model to read: indented `key: value` lines, empty
// values left out, long bodies kept whole (the structured result is the exact one).

function scalar(value: unknown): string {
  if (typeof value === "string") return value.includes("\n") ? value : value;
  return String(value);
}

function isEmpty(value: unknown): boolean {
  return value === null || value === undefined || (Array.isArray(value) && value.length === 0);
}

function lines(value: unknown, indent: string, out: string[]): void {
  if (Array.isArray(value)) {
    if (value.every((item) => item === null || typeof item !== "object")) {
      out.push(`${indent}${value.map(scalar).join(", ")}`);
      return;
    }
    for (const item of value) {
      const nested: string[] = [];
      lines(item, `${indent}  `, nested);
      if (nested.length) out.push(`${indent}- ${(nested[0] as string).trimStart()}`, ...nested.slice(1));
    }
    return;
  }
  if (value === null || typeof value !== "object") {
    out.push(`${indent}${scalar(value)}`);
    return;
  }
  for (const [key, item] of Object.entries(value)) {
    if (isEmpty(item)) continue;
    if (typeof item === "string" && item.includes("\n")) {
      out.push(`${indent}${key}: |`);
      for (const line of item.replace(/\r\n/g, "\n").split("\n")) out.push(`${indent}  ${line}`);
    } else if (item !== null && typeof item === "object") {
      if (Array.isArray(item) && item.every((x) => x === null || typeof x !== "object")) {
        out.push(`${indent}${key}: ${item.map(scalar).join(", ")}`);
      } else {
        out.push(`${indent}${key}:`);
        lines(item, `${indent}  `, out);
      }
    } else {
      out.push(`${indent}${key}: ${scalar(item)}`);
    }
  }
}

/** The result as text; `null` results (nothing found, nothing arrived) say so. */
export function renderText(result: Record<string, unknown>): string {
  const out: string[] = [];
  for (const [key, value] of Object.entries(result)) {
    if (value === null) {
      out.push(`${key}: none`);
    } else if (Array.isArray(value) && value.length === 0) {
      out.push(`${key}: none`);
    } else {
      lines({ [key]: value }, "", out);
    }
  }
  return out.join("\n");
}
