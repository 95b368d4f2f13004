// A word-level diff (longest common subsequence), for the correction editor: what the correction
// removes from the output and what it adds.

function tokens(text) {
  return text.match(/\s+|[^\s]+/g) || [];
}

/** [{op: "same"|"del"|"add", text}] turning `before` into `after`. */
export function wordDiff(before, after) {
  const a = tokens(before);
  const b = tokens(after);
  // Keep the table small: common prefix and suffix are equal runs.
  let start = 0;
  while (start < a.length && start < b.length && a[start] === b[start]) start++;
  let endA = a.length;
  let endB = b.length;
  while (endA > start && endB > start && a[endA - 1] === b[endB - 1]) {
    endA--;
    endB--;
  }
  const midA = a.slice(start, endA);
  const midB = b.slice(start, endB);
  const out = [];
  if (start > 0) out.push({ op: "same", text: a.slice(0, start).join("") });
  if (midA.length * midB.length > 4_000_000) {
    // Too large for the table: show it as a replacement.
    if (midA.length) out.push({ op: "del", text: midA.join("") });
    if (midB.length) out.push({ op: "add", text: midB.join("") });
  } else {
    const n = midA.length;
    const m = midB.length;
    const table = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
    for (let i = n - 1; i >= 0; i--) {
      for (let j = m - 1; j >= 0; j--) {
        table[i][j] = midA[i] === midB[j] ? table[i + 1][j + 1] + 1 : Math.max(table[i + 1][j], table[i][j + 1]);
      }
    }
    let i = 0;
    let j = 0;
    while (i < n || j < m) {
      if (i < n && j < m && midA[i] === midB[j]) push(out, "same", midA[i++], j++);
      else if (i < n && (j === m || table[i + 1][j] >= table[i][j + 1])) push(out, "del", midA[i++]);
      else push(out, "add", midB[j++]);
    }
  }
  if (endA < a.length) out.push({ op: "same", text: a.slice(endA).join("") });
  return out;
}

function push(out, op, text) {
  const last = out[out.length - 1];
  if (last && last.op === op) last.text += text;
  else out.push({ op, text });
}

/** The diff as DOM: <del> and <ins> around the changed runs. */
export function renderDiff(before, after) {
  const host = document.createElement("div");
  host.className = "diff";
  for (const part of wordDiff(before, after)) {
    const tag = part.op === "same" ? "span" : part.op === "del" ? "del" : "ins";
    const element = document.createElement(tag);
    element.textContent = part.text;
    host.append(element);
  }
  return host;
}
