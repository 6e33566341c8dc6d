"""Accessibility and small-screen checks for browser tests: axe-core (vendored, no CDN) and a
layout probe for narrow viewports."""

from __future__ import annotations

from pathlib import Path
from typing import Any

AXE_JS = Path(__file__).resolve().parents[1] / "vendor" / "axe-core" / "axe.min.js"
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]

_RUN_AXE = """async (tags) => {
  const result = await axe.run(document, {runOnly: {type: 'tag', values: tags}});
  return result.violations.map(v => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.map(n => ({target: n.target.join(' '), summary: n.failureSummary || ''})),
  }));
}"""

# Everything a person could need to reach at the right edge: buttons and controls that are
# visible, not inside a container that scrolls on its own (wide tables do, on purpose).
_CUT_OFF = """() => {
  const width = document.documentElement.clientWidth;
  const scrolls = (el) => {
    for (let p = el.parentElement; p; p = p.parentElement) {
      const overflow = getComputedStyle(p).overflowX;
      if (overflow === 'auto' || overflow === 'scroll') return true;
    }
    return false;
  };
  const out = [];
  const selector = 'button, .button, input, select, textarea, summary';
  for (const el of document.querySelectorAll(selector)) {
    const box = el.getBoundingClientRect();
    if (!box.width || !box.height || getComputedStyle(el).visibility === 'hidden') continue;
    if (el.type === 'hidden' || scrolls(el)) continue;
    if (box.left < -0.5 || box.right > width + 0.5) {
      const text = (el.innerText || el.value || el.name || el.id || '').trim().slice(0, 40);
      out.push(`${el.tagName.toLowerCase()} "${text}" spans ${Math.round(box.left)}..` +
               `${Math.round(box.right)} px`);
    }
  }
  return out;
}"""


def axe_violations(page: Any) -> list[dict[str, Any]]:
    """Run axe-core's WCAG 2.0/2.1 A and AA rules on the page and return its violations."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE_JS))
    violations: list[dict[str, Any]] = page.evaluate(_RUN_AXE, WCAG_TAGS)
    return violations


def format_violations(name: str, violations: list[dict[str, Any]]) -> str:
    """A readable report: one block per rule with its impact, help and failing selectors."""
    lines = [f"{name}: {len(violations)} axe violation(s)"]
    for violation in violations:
        lines.append(f"  [{violation['impact']}] {violation['id']}: {violation['help']}")
        for node in violation["nodes"][:8]:
            lines.append(f"      {node['target']}")
            for detail in node["summary"].splitlines()[1:3]:
                lines.append(f"          {detail.strip()}")
        if len(violation["nodes"]) > 8:
            lines.append(f"      ... and {len(violation['nodes']) - 8} more")
    return "\n".join(lines)


def assert_no_axe_violations(page: Any, name: str) -> None:
    """Fail with a readable list when axe-core finds any WCAG 2.1 A/AA violation on the page."""
    violations = axe_violations(page)
    assert not violations, format_violations(name, violations)


def layout_problems(page: Any, width: int) -> list[str]:
    """What is wrong on the page at a narrow ``width``: horizontal overflow, controls cut off."""
    problems: list[str] = []
    scroll_width = page.evaluate("() => document.documentElement.scrollWidth")
    if scroll_width > width:
        problems.append(f"page is {scroll_width} px wide at a {width} px viewport")
    problems.extend(page.evaluate(_CUT_OFF))
    return problems


def assert_fits(page: Any, name: str, width: int = 390) -> None:
    """Fail when the page scrolls sideways or a control is cut off at ``width``."""
    problems = layout_problems(page, width)
    assert not problems, f"{name} at {width} px:\n  " + "\n  ".join(problems)
