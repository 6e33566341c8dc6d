// Builds the compose page editors into core/static/editor/ (committed). Deterministic: the same
// lockfile gives the same bytes, which tests/test_editor_bundle.py checks by rebuilding.
import { build } from "esbuild";

await build({
  entryPoints: { editor: "src/editor.js" },
  bundle: true,
  minify: true,
  format: "iife",
  target: ["es2020"],
  // EDITOR_OUTDIR: where tests/test_editor_bundle.py rebuilds it to compare.
  outdir: process.env.EDITOR_OUTDIR || "../core/static/editor",
  legalComments: "linked", // licences of the bundled packages in editor.js.LEGAL.txt
  sourcemap: false,
  charset: "utf8",
  logLevel: "warning",
  loader: { ".svg": "dataurl" },
});
