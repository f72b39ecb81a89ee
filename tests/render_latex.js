// Renders LaTeX with KaTeX and with MathJax 3 and reports what either rejects.
// Input (stdin): a JSON list of {"name", "latex", "page"}; output (stdout): a
// JSON list of {"name", "renderer", "error"}, empty when every formula
// renders. With "page" true, "latex" is a whole notebook output ($$...$$),
// checked as Jupyter finds its math.
// Run with NODE_PATH pointing at a node_modules holding katex and mathjax-full.
"use strict";
const katex = require("katex");
const { mathjax } = require("mathjax-full/js/mathjax.js");
const { TeX } = require("mathjax-full/js/input/tex.js");
const { SVG } = require("mathjax-full/js/output/svg.js");
const { liteAdaptor } = require("mathjax-full/js/adaptors/liteAdaptor.js");
const { RegisterHTMLHandler } = require("mathjax-full/js/handlers/html.js");
const { AllPackages } = require("mathjax-full/js/input/tex/AllPackages.js");

const adaptor = liteAdaptor();
RegisterHTMLHandler(adaptor);
// Jupyter's MathJax 3 loads every TeX package; an error throws instead of
// becoming a red merror node.
const tex = new TeX({
  packages: AllPackages.filter((p) => p !== "noerrors" && p !== "noundefined"),
  formatError: (jax, err) => { throw err; },
});
const doc = mathjax.document("", { InputJax: tex, OutputJax: new SVG({ fontCache: "none" }) });

function mathjaxError(latex) {
  try {
    const node = doc.convert(latex, { display: true });
    const html = adaptor.outerHTML(node);
    return /merror|data-mjx-error/.test(html) ? html.slice(0, 300) : null;
  } catch (err) {
    return String(err.message || err);
  }
}

function katexError(latex) {
  try {
    katex.renderToString(latex, { displayMode: true, throwOnError: true, strict: "error" });
    return null;
  } catch (err) {
    return String(err.message || err);
  }
}

// A notebook output (`_repr_latex_`: the formula inside $$ ... $$) as Jupyter
// shows it: MathJax finds the math in the text by its delimiters first, so a
// `$$` inside the formula would end it early.
function pageError(text) {
  const pageTex = new TeX({
    inlineMath: [["$", "$"], ["\\(", "\\)"]],
    displayMath: [["$$", "$$"], ["\\[", "\\]"]],
    processEscapes: true,
  });
  const escaped = text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  const page = mathjax.document(`<html><body><div>${escaped}</div></body></html>`,
                                { InputJax: pageTex });
  page.findMath();
  const found = Array.from(page.math);
  const whole = text.replace(/^\$\$?|\$?\$$/g, "").trim();
  if (found.length !== 1 || found[0].math.trim() !== whole) {
    return `Jupyter's delimiter scan finds ${found.length} formula(s), ` +
      `not the whole output: ${found.map((m) => m.math.slice(0, 60)).join(" | ")}`;
  }
  return null;
}

const input = JSON.parse(require("fs").readFileSync(0, "utf8"));
const errors = [];
for (const { name, latex, page } of input) {
  const checks = page ? [["jupyter", pageError]]
    : [["katex", katexError], ["mathjax", mathjaxError]];
  for (const [renderer, check] of checks) {
    const error = check(latex);
    if (error !== null) errors.push({ name, renderer, error });
  }
}
process.stdout.write(JSON.stringify(errors));
