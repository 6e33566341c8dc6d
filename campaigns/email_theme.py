"""The email theme that markdown and rich-text bodies are put in: a centred 600 px column
built from tables (what Outlook and every webmail lay out alike), a viewport meta, and a media
query that lets it take the full width on a phone. Its ``<style>`` rules are inlined onto the
elements when the body is compiled (:mod:`campaigns.content`); the block stays for the media
query and for clients that read it."""

from __future__ import annotations

THEME_CSS = """
body { margin: 0; padding: 0; background: #f4f5f7; -webkit-text-size-adjust: 100%; }
.envoy-outer { width: 100%; background: #f4f5f7; }
.envoy-inner { width: 600px; max-width: 600px; background: #ffffff; }
.envoy-content { padding: 32px 40px; font-family: Helvetica, Arial, sans-serif; font-size: 16px;
  line-height: 1.55; color: #1f2328; }
h1 { font-size: 26px; line-height: 1.25; margin: 0 0 16px; color: #111111; }
h2 { font-size: 21px; line-height: 1.3; margin: 24px 0 12px; color: #111111; }
h3, h4 { font-size: 17px; margin: 20px 0 8px; color: #111111; }
p { margin: 0 0 16px; }
a { color: #1a5fb4; text-decoration: underline; }
img { max-width: 100%; height: auto; border: 0; }
blockquote { margin: 0 0 16px; padding: 4px 16px; border-left: 4px solid #d0d7de; color: #57606a; }
pre { background: #f6f8fa; padding: 12px; font-size: 14px; overflow: auto; }
code { font-family: Menlo, Consolas, monospace; font-size: 14px; }
hr { border: 0; border-top: 1px solid #d0d7de; margin: 24px 0; }
table.envoy-data, .envoy-content table { border-collapse: collapse; }
.envoy-content th, .envoy-content td { border: 1px solid #d0d7de; padding: 6px 10px; }
ul, ol { margin: 0 0 16px; padding-left: 24px; }
.ql-align-center { text-align: center; }
.ql-align-right { text-align: right; }
.ql-align-justify { text-align: justify; }
@media only screen and (max-width: 620px) {
  .envoy-inner { width: 100% !important; }
  .envoy-content { padding: 20px 16px !important; }
}
"""


def themed(fragment: str) -> str:
    """A whole HTML document holding ``fragment`` (already safe HTML) in the theme."""
    return (
        "<!doctype html>\n"
        '<html><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="x-apple-disable-message-reformatting">'
        f'<style type="text/css">{THEME_CSS}</style></head>\n'
        "<body>"
        '<table role="presentation" class="envoy-outer" width="100%" cellpadding="0" '
        'cellspacing="0" border="0"><tr><td align="center">'
        '<table role="presentation" class="envoy-inner" width="600" cellpadding="0" '
        'cellspacing="0" border="0"><tr><td class="envoy-content">\n'
        f"{fragment}\n"
        "</td></tr></table></td></tr></table>\n</body></html>\n"
    )
