// The compose page's body editors: the visual editor (GrapesJS with MJML blocks), the rich-text
// editor (Quill), markdown with a live preview, raw HTML and plain text. Everything is served by
// the platform itself: no font, icon, image or script is fetched from anywhere else.
import grapesjs from "grapesjs";
import "grapesjs/dist/css/grapes.min.css";
import grapesjsMjml from "grapesjs-mjml";
import Quill from "quill";
import "quill/dist/quill.snow.css";
import "./editor.css";

const FONT = "Helvetica, Arial, sans-serif";
const STARTER_MJML = `<mjml><mj-head><mj-attributes><mj-all font-family="${FONT}"></mj-all></mj-attributes></mj-head>
<mj-body background-color="#f4f5f7"><mj-section background-color="#ffffff"><mj-column>
<mj-text font-size="16px" line-height="1.5">Hello {{ contact.first_name }},</mj-text>
</mj-column></mj-section></mj-body></mjml>`;

const button = (id, command, label, title, extra = {}) => ({
  id,
  command,
  label,
  togglable: false,
  attributes: { title },
  ...extra,
});
const PANELS = [
  { id: "commands", buttons: [{}] },
  {
    id: "options",
    buttons: [
      button("sw-visibility", "core:component-outline", "Outlines", "View components", {
        active: true,
        togglable: true,
        context: "sw-visibility",
      }),
      button("preview", "preview", "Preview", "Preview", { context: "preview", togglable: true }),
      button("export-template", "export-template", "Code", "View code"),
    ],
  },
  {
    id: "views",
    buttons: [
      button("open-blocks", "open-blocks", "Blocks", "Open Blocks", { active: true }),
      button("open-sm", "open-sm", "Style", "Open Style Manager"),
      button("open-tm", "open-tm", "Settings", "Settings"),
      button("open-layers", "open-layers", "Layers", "Open Layer Manager"),
    ],
  },
];

function socialElement(root, name, label) {
  return `<mj-social-element name="${name}-noshare" href="https://example.com/" src="${root}social/${name}.png">${label}</mj-social-element>`;
}

function blocks(root, placeholder) {
  const section = (cols) =>
    `<mj-section background-color="#ffffff">${cols
      .map((w) => `<mj-column width="${w}"><mj-text>Write here</mj-text></mj-column>`)
      .join("")}</mj-section>`;
  return [
    ["envoy-section", "Section", section(["100%"])],
    ["envoy-columns-2", "2 columns", section(["50%", "50%"])],
    ["envoy-columns-3", "3 columns", section(["33.33%", "33.33%", "33.34%"])],
    ["envoy-text", "Text", `<mj-text font-size="16px" line-height="1.5">Write your text here</mj-text>`],
    ["envoy-image", "Image", `<mj-image src="${placeholder}" alt="Describe the image"></mj-image>`],
    ["envoy-button", "Button", `<mj-button href="https://example.com/" background-color="#1a5fb4">Click here</mj-button>`],
    ["envoy-divider", "Divider", `<mj-divider border-width="1px" border-color="#d0d7de"></mj-divider>`],
    ["envoy-spacer", "Spacer", `<mj-spacer height="24px"></mj-spacer>`],
    [
      "envoy-social",
      "Social links",
      `<mj-social icon-size="24px" mode="horizontal">${socialElement(root, "facebook", "Facebook")}${socialElement(root, "x", "X")}${socialElement(root, "linkedin", "LinkedIn")}${socialElement(root, "instagram", "Instagram")}</mj-social>`,
    ],
    [
      "envoy-footer",
      "Footer",
      `<mj-section><mj-column><mj-text font-size="12px" color="#666666" align="center">You receive this email because you subscribed. Your postal address and the unsubscribe link are added to every message.</mj-text></mj-column></mj-section>`,
    ],
  ];
}

function fieldsOf(root) {
  try {
    return JSON.parse(root.dataset.fields || "[]");
  } catch {
    return [];
  }
}

function insertIntoTextarea(area, text) {
  const start = area.selectionStart ?? area.value.length;
  const end = area.selectionEnd ?? start;
  area.value = area.value.slice(0, start) + text + area.value.slice(end);
  area.selectionStart = area.selectionEnd = start + text.length;
  area.focus();
  area.dispatchEvent(new Event("input", { bubbles: true }));
}

function startVisual(root, source, state) {
  const container = root.querySelector("#visual-editor");
  const staticRoot = root.dataset.staticRoot;
  const placeholder = `${staticRoot}placeholder.png`;
  const editor = grapesjs.init({
    container,
    height: "640px",
    fromElement: false,
    storageManager: false,
    // Nothing leaves the platform: no Font Awesome from a CDN, no usage telemetry.
    cssIcons: "",
    telemetry: false,
    avoidInlineStyle: true,
    protectedCss: "",
    canvas: { styles: [], scripts: [] },
    assetManager: { assets: [], upload: false, embedAsBase64: false },
    // Text labels: GrapesJS's default buttons are Font Awesome icons, which are not loaded.
    panels: { defaults: PANELS },
    plugins: [grapesjsMjml],
    pluginsOpts: {
      [grapesjsMjml]: {
        blocks: [],
        fonts: {},
        imagePlaceholderSrc: placeholder,
        useCustomTheme: true,
      },
    },
    components: source.trim() ? source : STARTER_MJML,
  });
  for (const [id, label, content] of blocks(staticRoot, placeholder)) {
    editor.BlockManager.add(id, { label, content, category: "Blocks", media: "" });
  }
  // The account's images, when the media library is there (GET /media.json); without it, the
  // asset manager only takes image URLs typed in.
  fetch(root.dataset.mediaUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
    .then((response) => (response.ok ? response.json() : []))
    .then((items) => {
      if (!Array.isArray(items)) return;
      editor.AssetManager.add(
        items.map((item) => ({ src: item.url, name: item.name, width: item.width, height: item.height })),
      );
      root.dataset.mediaAvailable = items.length ? "yes" : "empty";
    })
    .catch(() => {
      root.dataset.mediaAvailable = "no";
    });
  state.visual = editor;
  // Where the caret was in the last text edited: picking a field moves the focus to the
  // picker, and the field goes back there.
  let lastText = null;
  editor.on("rte:enable", (view) => {
    lastText = view;
  });
  // The caret is kept as a character offset into the text being edited (ranges do not survive
  // the editor rewriting the text's nodes), updated on every key and click in the canvas.
  let caret = null;
  const editableOf = (view) =>
    (view && view.getChildrenContainer && view.getChildrenContainer()) || (view && view.el);
  const remember = () => {
    const doc = editor.Canvas.getDocument();
    const selection = doc && doc.getSelection();
    const editable = editableOf(lastText);
    if (!editor.getEditing() || !editable || !selection || !selection.rangeCount) return;
    const range = selection.getRangeAt(0);
    if (!editable.contains(range.startContainer)) return;
    const before = doc.createRange();
    before.selectNodeContents(editable);
    before.setEnd(range.startContainer, range.startOffset);
    caret = before.toString().length;
  };
  const listen = () => {
    const doc = editor.Canvas.getDocument();
    if (doc && !doc.envoyListening) {
      doc.envoyListening = true;
      for (const name of ["keyup", "mouseup", "input"]) doc.addEventListener(name, remember);
    }
  };
  editor.on("load", () => {
    listen();
    const frame = editor.Canvas.getFrameEl();
    if (frame) frame.title = "Email being edited";
  });
  editor.on("canvas:frame:load", listen);
  editor.on("rte:enable", () => {
    caret = null;
    listen();
  });
  const rangeAt = (doc, editable, offset) => {
    const range = doc.createRange();
    const walker = doc.createTreeWalker(editable, NodeFilter.SHOW_TEXT);
    let left = offset ?? Number.MAX_SAFE_INTEGER;
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      if (left <= node.length) {
        range.setStart(node, left);
        range.collapse(true);
        return range;
      }
      left -= node.length;
    }
    range.selectNodeContents(editable);
    range.collapse(false);
    return range;
  };
  state.insert.visual = (text) => {
    const doc = editor.Canvas.getDocument();
    if (!doc || !lastText || !lastText.el || !lastText.el.isConnected) return false;
    if (!editor.getEditing()) {
      editor.select(lastText.model);
      lastText.onActive();
    }
    const editable = editableOf(lastText);
    const range = rangeAt(doc, editable, caret);
    const node = doc.createTextNode(text);
    range.insertNode(node);
    caret = (caret ?? editable.textContent.length - text.length) + text.length;
    return true;
  };
  state.read.visual = () => editor.getHtml();
  // A text being edited keeps its latest changes in the page until editing stops.
  state.flush.visual = async () => {
    const view = editor.getEditing() && lastText;
    if (view && view.disableEditing) await view.disableEditing();
  };
  window.envoyVisualEditor = editor; // for the browser tests and the console
  root.dataset.visualReady = "yes";
}

function startRichText(root, source, state) {
  const holder = root.querySelector("#richtext-editor");
  const quill = new Quill(holder, {
    theme: "snow",
    modules: {
      toolbar: [
        [{ header: [1, 2, 3, false] }],
        ["bold", "italic", "underline", "strike"],
        ["link", "blockquote"],
        [{ list: "ordered" }, { list: "bullet" }],
        [{ align: [] }],
        ["clean"],
      ],
    },
  });
  if (source.trim()) {
    quill.setContents(quill.clipboard.convert({ html: source }), "silent");
  }
  // Quill's header and alignment pickers are buttons without a name.
  const toolbar = holder.parentElement.querySelector(".ql-toolbar");
  if (toolbar) {
    for (const [selector, name] of [[".ql-header", "Text style"], [".ql-align", "Alignment"]]) {
      const label = toolbar.querySelector(`${selector} .ql-picker-label`);
      if (label) label.setAttribute("aria-label", name);
    }
  }
  const editable = holder.querySelector(".ql-editor");
  if (editable) {
    editable.setAttribute("aria-label", "Rich-text body");
    editable.setAttribute("role", "textbox");
    editable.setAttribute("aria-multiline", "true");
  }
  state.quill = quill;
  // Where the caret was when the picker took the focus.
  let caret = null;
  quill.on("editor-change", () => {
    const range = quill.getSelection();
    if (range) caret = range.index;
  });
  state.insert.richtext = (text) => {
    const index = caret ?? quill.getLength() - 1;
    quill.insertText(index, text, "user");
    quill.setSelection(index + text.length, 0, "user");
    caret = index + text.length;
    return true;
  };
  state.read.richtext = () => quill.root.innerHTML;
  root.dataset.richtextReady = "yes";
}

function startMarkdownPreview(root, area) {
  const frame = root.querySelector("#markdown-preview");
  const url = root.dataset.previewUrl;
  const token = root.closest("form").querySelector("input[name=csrf_token]");
  let timer = null;
  const refresh = () => {
    const body = new URLSearchParams({ content_format: "markdown", content_source: area.value });
    if (token) body.set("csrf_token", token.value);
    fetch(url, { method: "POST", body, credentials: "same-origin" })
      .then((response) => response.text())
      .then((html) => {
        frame.srcdoc = html;
        root.dataset.previewRefreshed = String(Date.now());
      })
      .catch(() => {});
  };
  area.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(refresh, 300);
  });
  refresh();
}

function init() {
  const root = document.getElementById("content-editor");
  if (!root) return;
  const form = root.closest("form");
  const select = form.querySelector("#content_format");
  const source = form.querySelector("#content_source");
  const htmlBody = form.querySelector("#html_body");
  const state = { insert: {}, read: {}, flush: {} };
  const panels = {
    visual: root.querySelector("#visual-panel"),
    richtext: root.querySelector("#richtext-panel"),
    markdown: root.querySelector("#markdown-panel"),
  };
  const sourceField = source.closest(".field") || source.parentElement;
  const htmlField = htmlBody.closest(".field") || htmlBody.parentElement;
  const textBody = form.querySelector("#text_body");
  const textField = textBody && (textBody.closest(".field") || textBody.parentElement);
  const initial = select.value;
  let current = initial;

  const show = (fmt) => {
    for (const [name, panel] of Object.entries(panels)) panel.hidden = name !== fmt;
    sourceField.hidden = !(fmt === "markdown" || fmt === "plain");
    htmlField.hidden = fmt !== "html";
    if (textField) textField.hidden = fmt === "plain"; // a plain body is its own text part
    const label = sourceField.querySelector("label");
    if (label) label.textContent = fmt === "markdown" ? "Markdown body" : "Plain-text body";
    if (fmt === "visual" && !state.visual) startVisual(root, current === initial ? source.value : "", state);
    if (fmt === "richtext" && !state.quill) startRichText(root, current === initial ? source.value : "", state);
    if (fmt === "markdown" && !state.markdown) {
      state.markdown = true;
      startMarkdownPreview(root, source);
    }
    root.dataset.format = fmt;
  };

  select.addEventListener("change", () => {
    const hasBody = (current === "html" ? htmlBody.value : source.value).trim() !== "" ||
      state.visual || state.quill;
    if (hasBody && !window.confirm(
      "Switching the format starts the body again in the new format: the current body is not carried over. Continue?",
    )) {
      select.value = current;
      return;
    }
    current = select.value;
    if (current !== initial) source.value = "";
    show(current);
  });

  const picker = root.querySelector("#field-picker");
  root.querySelector("#insert-field").addEventListener("click", () => {
    const tag = `{{ ${picker.value} }}`;
    const fmt = select.value;
    const status = root.querySelector("#field-status");
    let done = false;
    if (state.insert[fmt]) done = state.insert[fmt](tag);
    else done = insertIntoTextarea(fmt === "html" ? htmlBody : source, tag) ?? true;
    status.textContent = done === false
      ? `Click into a text block first, then insert ${tag}.`
      : `Inserted ${tag}.`;
  });

  let flushed = false;
  form.addEventListener("submit", (event) => {
    const fmt = select.value;
    if (state.flush[fmt] && !flushed) {
      event.preventDefault();
      state.flush[fmt]().finally(() => {
        flushed = true;
        source.value = state.read[fmt]();
        form.submit();
      });
      return;
    }
    if (state.read[fmt]) source.value = state.read[fmt]();
  });
  root.dataset.ready = "yes";
  show(current);
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
else init();
