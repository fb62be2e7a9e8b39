// lma-bot playground: a small Slack client. No dependencies; the server plays Slack's side and this page
// polls /playground/api/state for what the acting person sees.
"use strict";

const S = {
  team: localStorage.getItem("pg.team") || "",
  user: localStorage.getItem("pg.user") || "",
  nav: localStorage.getItem("pg.nav") || "",  // channel id, or "home"
  threadTs: null,
  data: null,
  rendered: "",
  modalKey: "",
  busy: 0,
};

const $ = (sel) => document.querySelector(sel);

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") el.className = v;
    else if (k === "html") el.innerHTML = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function toast(text) {
  const t = $("#toast");
  t.textContent = text;
  t.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.hidden = true; }, 4000);
}

async function api(path, body) {
  S.busy++;
  try {
    const resp = await fetch("/playground/api/" + path, {
      method: "POST",
      headers: {"Content-Type": "application/json"},
      body: JSON.stringify({team: S.team, user: S.user, ...body}),
    });
    const data = await resp.json().catch(() => ({ok: false, error: "HTTP " + resp.status}));
    if (data.error && !data.errors) toast(data.error);
    else if (data.status && data.status !== 200) toast("the bot answered HTTP " + data.status);
    return data;
  } finally {
    S.busy--;
    poll();
  }
}

// ------------------------------------------------------------------------------------------------ mrkdwn

function escapeHtml(s) {
  return String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

function unescapeSlack(s) {
  return s.replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&");
}

function personName(id) {
  const p = (S.data && S.data.people || []).find((x) => x.id === id);
  return p ? p.handle : id;
}

function channelName(id) {
  const c = (S.data && S.data.channels || []).find((x) => x.id === id);
  return c ? c.name : id;
}

function token(inner) {
  // <@U123|name> <#C123|name> <!here> <!date^1700000000^{date_short}|fallback> <http://x|label>
  const [target, label] = splitOnce(inner, "|");
  if (target.startsWith("@")) return `<span class="mention">@${escapeHtml(label || personName(target.slice(1)))}</span>`;
  if (target.startsWith("#")) return `<span class="mention">#${escapeHtml(label || channelName(target.slice(1)))}</span>`;
  if (target.startsWith("!date^")) {
    const parts = target.split("^");
    const when = new Date(Number(parts[1]) * 1000);
    const shown = isNaN(when) ? (label || "") : when.toLocaleString();
    return `<span class="date" title="${escapeHtml(label || "")}">${escapeHtml(shown || label || "")}</span>`;
  }
  if (target.startsWith("!")) return `<span class="mention">@${escapeHtml(label || target.slice(1).split("^")[0])}</span>`;
  const url = unescapeSlack(target);
  const safe = /^(https?:|mailto:)/i.test(url) ? url : "#";
  return `<a href="${escapeHtml(safe)}" target="_blank" rel="noopener">${escapeHtml(unescapeSlack(label || url))}</a>`;
}

function splitOnce(s, sep) {
  const i = s.indexOf(sep);
  return i < 0 ? [s, ""] : [s.slice(0, i), s.slice(i + 1)];
}

function mrkdwn(text) {
  const saved = [];
  const keep = (html) => { saved.push(html); return `\u0000${saved.length - 1}\u0000`; };
  let s = String(text || "");
  s = s.replace(/```([\s\S]*?)```/g, (_, code) => keep(`<pre>${escapeHtml(unescapeSlack(code))}</pre>`));
  s = s.replace(/`([^`\n]+)`/g, (_, code) => keep(`<code>${escapeHtml(unescapeSlack(code))}</code>`));
  s = s.replace(/<([^<>\n]+)>/g, (_, inner) => keep(token(inner)));
  s = escapeHtml(unescapeSlack(s));
  s = s.replace(/(^|[\s(])\*([^*\n]+)\*(?=$|[\s).,:;!?])/g, "$1<b>$2</b>");
  s = s.replace(/(^|[\s(])_([^_\n]+)_(?=$|[\s).,:;!?])/g, "$1<i>$2</i>");
  s = s.replace(/(^|[\s(])~([^~\n]+)~(?=$|[\s).,:;!?])/g, "$1<s>$2</s>");
  s = s.replace(/^&gt; ?(.*)$/gm, "<blockquote>$1</blockquote>");
  s = s.replace(/:([a-z0-9_+-]+):/g, (m, name) => EMOJI[name] || m);
  s = s.replace(/\n/g, "<br>");
  return s.replace(/\u0000(\d+)\u0000/g, (_, i) => saved[Number(i)]);
}

const EMOJI = {
  warning: "⚠️", white_check_mark: "✅", x: "❌", fire: "🔥", snowflake: "❄️", bell: "🔔", memo: "📝",
  hourglass: "⏳", hourglass_flowing_sand: "⏳", busts_in_silhouette: "👥", bust_in_silhouette: "👤",
  alarm_clock: "⏰", chart_with_upwards_trend: "📈", thermometer: "🌡️", lock: "🔒", wave: "👋",
  no_entry: "⛔", information_source: "ℹ️", tada: "🎉", sunny: "☀️", zzz: "💤", star: "⭐",
  arrows_counterclockwise: "🔄", twisted_rightwards_arrows: "🔀", speech_balloon: "💬", clipboard: "📋", heavy_check_mark: "✔️", email: "📧", link: "🔗", calendar: "📅",
};

function textObject(obj) {
  if (!obj) return h("span");
  if (typeof obj === "string") return h("span", {class: "mrkdwn", html: mrkdwn(obj)});
  if (obj.type === "mrkdwn") return h("span", {class: "mrkdwn", html: mrkdwn(obj.text)});
  return h("span", {}, obj.text || "");
}

function plain(obj) {
  return obj ? (typeof obj === "string" ? obj : obj.text || "") : "";
}

// --------------------------------------------------------------------------------------- Block Kit

function unknown(kind, what) {
  return h("div", {class: "unknown", "data-unknown": kind},
    h("div", {}, `⚠️ The playground can't show this ${kind} (type "${what.type}"); here it is as JSON:`),
    h("pre", {}, JSON.stringify(what, null, 2)));
}

function renderBlocks(blocks, ctx) {
  const wrap = h("div", {class: "blocks"});
  for (const block of blocks || []) wrap.append(renderBlock(block, ctx));
  return wrap;
}

function renderBlock(b, ctx) {
  const el = (() => {
    switch (b.type) {
      case "section": {
        const main = h("div", {class: "main"});
        if (b.text) main.append(h("div", {}, textObject(b.text)));
        if (b.fields) main.append(h("div", {class: "fields"}, b.fields.map((f) => h("div", {}, textObject(f)))));
        const sec = h("div", {class: "section"}, main);
        if (b.accessory) sec.append(renderElement(b.accessory, b.block_id, ctx, false));
        return sec;
      }
      case "context":
        return h("div", {class: "context"}, (b.elements || []).map((e) =>
          e.type === "image" ? h("img", {src: e.image_url, alt: e.alt_text || ""}) : textObject(e)));
      case "divider":
        return h("hr", {class: "divider"});
      case "header":
        return h("div", {class: "header"}, plain(b.text));
      case "image":
        return h("div", {class: "image-block"},
          b.title ? h("div", {}, plain(b.title)) : null,
          h("img", {src: b.image_url || (b.slack_file && b.slack_file.url) || "", alt: b.alt_text || ""}));
      case "actions":
        return h("div", {class: "actions"}, (b.elements || []).map((e) => renderElement(e, b.block_id, ctx, false)));
      case "input":
        return renderInput(b, ctx);
      default:
        return unknown("block", b);
    }
  })();
  return h("div", {class: "block block-" + b.type, "data-block-id": b.block_id || ""}, el);
}

function renderInput(b, ctx) {
  const error = ctx.errors && ctx.errors[b.block_id];
  const wrap = h("div", {class: "input-block" + (error ? " has-error" : ""), "data-input-block": b.block_id},
    h("label", {}, plain(b.label), b.optional ? h("span", {class: "optional"}, " (optional)") : null),
    renderElement(b.element, b.block_id, ctx, !b.dispatch_action));
  if (b.hint) wrap.append(h("div", {class: "hint-text"}, plain(b.hint)));
  if (error) wrap.append(h("div", {class: "field-error", role: "alert"}, error));
  return wrap;
}

function option(o) {
  return {text: {type: "plain_text", text: plain(o.text), emoji: true}, value: o.value};
}

function allOptions(el) {
  return (el.options || []).concat(...(el.option_groups || []).map((g) => g.options || []));
}

function selectFrom(items, initial, placeholder) {
  const sel = h("select", {}, h("option", {value: ""}, placeholder || "Select an item"));
  for (const [value, label] of items) sel.append(h("option", {value, selected: value === initial}, label));
  return sel;
}

function epochToLocal(seconds) {
  const d = new Date(seconds * 1000);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

// Each interactive element: its DOM, and (as el._value) how to read its state value.
function renderElement(e, blockId, ctx, inInput) {
  const base = {type: e.type, action_id: e.action_id, block_id: blockId};
  const fire = (extra) => {
    if (inInput) return;  // inside an input block: only submitted with the view
    act(ctx, {...base, ...extra});
  };
  const mark = (node, read) => {
    node.dataset.actionId = e.action_id || "";
    node.dataset.blockId = blockId || "";
    node._read = read;
    node.classList.add("element");
    return node;
  };
  switch (e.type) {
    case "button": {
      const btn = h("button", {type: "button", class: "btn" + (e.style ? " " + e.style : ""), "data-value": e.value || ""},
        plain(e.text));
      btn.addEventListener("click", () => {
        const go = () => {
          if (e.url) window.open(e.url, "_blank", "noopener");
          act(ctx, {...base, text: e.text, value: e.value, style: e.style});
        };
        if (e.confirm) confirmDialog(e.confirm, go); else go();
      });
      return btn;
    }
    case "static_select": case "external_select": {
      const opts = allOptions(e);
      const sel = selectFrom(opts.map((o) => [o.value, plain(o.text)]), e.initial_option && e.initial_option.value, plain(e.placeholder));
      const read = () => {
        const o = opts.find((x) => x.value === sel.value);
        return {type: e.type, selected_option: o ? option(o) : null};
      };
      sel.addEventListener("change", () => withConfirm(e, () => fire(read())));
      return mark(sel, read);
    }
    case "multi_static_select": {
      const opts = allOptions(e);
      const sel = h("select", {multiple: true});
      const initial = (e.initial_options || []).map((o) => o.value);
      for (const o of opts) sel.append(h("option", {value: o.value, selected: initial.includes(o.value)}, plain(o.text)));
      const read = () => ({type: e.type, selected_options: opts.filter((o) => [...sel.selectedOptions].some((x) => x.value === o.value)).map(option)});
      sel.addEventListener("change", () => fire(read()));
      return mark(sel, read);
    }
    case "users_select": {
      const people = (S.data.people || []).filter((p) => p.role !== "bot");
      const sel = selectFrom(people.map((p) => [p.id, `${p.name} (@${p.handle})`]), e.initial_user, plain(e.placeholder) || "Select a person");
      const read = () => ({type: e.type, selected_user: sel.value || null});
      sel.addEventListener("change", () => withConfirm(e, () => fire(read())));
      return mark(sel, read);
    }
    case "conversations_select": case "channels_select": {
      const convs = (S.data.channels || []).map((c) => [c.id, "#" + c.name]);
      const initial = e.initial_conversation || e.initial_channel;
      const sel = selectFrom(convs, initial, plain(e.placeholder) || "Select a channel");
      const key = e.type === "channels_select" ? "selected_channel" : "selected_conversation";
      const read = () => ({type: e.type, [key]: sel.value || null});
      sel.addEventListener("change", () => withConfirm(e, () => fire(read())));
      return mark(sel, read);
    }
    case "overflow": {
      const menu = h("div", {class: "overflow-menu", hidden: true});
      const btn = h("button", {type: "button", class: "btn", "aria-label": "More actions"}, "⋯");
      btn.addEventListener("click", () => { menu.hidden = !menu.hidden; });
      for (const o of e.options || []) {
        menu.append(h("button", {type: "button", onclick: () => {
          menu.hidden = true;
          withConfirm(e, () => act(ctx, {...base, selected_option: option(o)}));
        }}, plain(o.text)));
      }
      return h("span", {class: "overflow"}, btn, menu);
    }
    case "datepicker": {
      const input = h("input", {type: "date", value: e.initial_date || ""});
      const read = () => ({type: e.type, selected_date: input.value || null});
      input.addEventListener("change", () => withConfirm(e, () => fire(read())));
      return mark(input, read);
    }
    case "timepicker": {
      const input = h("input", {type: "time", value: e.initial_time || ""});
      const read = () => ({type: e.type, selected_time: input.value || null, timezone: e.timezone});
      input.addEventListener("change", () => withConfirm(e, () => fire(read())));
      return mark(input, read);
    }
    case "datetimepicker": {
      const input = h("input", {type: "datetime-local", value: e.initial_date_time ? epochToLocal(e.initial_date_time) : ""});
      const read = () => ({type: e.type, selected_date_time: input.value ? Math.floor(new Date(input.value).getTime() / 1000) : null});
      input.addEventListener("change", () => fire(read()));
      return mark(input, read);
    }
    case "plain_text_input": case "email_text_input": case "url_text_input": case "number_input": {
      const attrs = {placeholder: plain(e.placeholder), value: e.initial_value || ""};
      const input = e.multiline ? h("textarea", {...attrs, rows: 4}) : h("input", {...attrs, type: "text"});
      if (e.multiline) input.value = e.initial_value || "";
      const read = () => ({type: e.type, value: input.value === "" ? null : input.value});
      input.addEventListener("change", () => fire(read()));
      return mark(input, read);
    }
    case "checkboxes": case "radio_buttons": {
      const box = h("div", {});
      const multi = e.type === "checkboxes";
      const initial = multi ? (e.initial_options || []).map((o) => o.value) : [e.initial_option && e.initial_option.value];
      const name = "r" + Math.random().toString(36).slice(2);
      for (const o of e.options || []) {
        box.append(h("label", {class: "checkbox-option"},
          h("input", {type: multi ? "checkbox" : "radio", name, value: o.value, checked: initial.includes(o.value)}),
          " ", textObject(o.text)));
      }
      const read = () => {
        const chosen = [...box.querySelectorAll("input:checked")].map((i) => (e.options || []).find((o) => o.value === i.value)).map(option);
        return multi ? {type: e.type, selected_options: chosen} : {type: e.type, selected_option: chosen[0] || null};
      };
      box.addEventListener("change", () => fire(read()));
      return mark(box, read);
    }
    case "image":
      return h("img", {class: "accessory-image", src: e.image_url, alt: e.alt_text || ""});
    default:
      return unknown("element", e);
  }
}

function withConfirm(e, go) {
  if (e.confirm) confirmDialog(e.confirm, go); else go();
}

function confirmDialog(c, go) {
  const root = $("#confirm-root");
  const close = () => { root.innerHTML = ""; };
  root.innerHTML = "";
  root.append(h("div", {class: "overlay"},
    h("div", {class: "modal confirm", role: "dialog"},
      h("header", {}, plain(c.title) || "Are you sure?"),
      h("div", {class: "content"}, textObject(c.text)),
      h("footer", {},
        h("button", {type: "button", class: "btn", onclick: close}, plain(c.deny) || "Cancel"),
        h("button", {type: "button", class: "btn " + (c.style === "danger" ? "danger" : "primary"),
          onclick: () => { close(); go(); }}, plain(c.confirm) || "Confirm")))));
}

function stateValues(root) {
  const values = {};
  for (const node of root.querySelectorAll(".element")) {
    if (!node._read || !node.dataset.actionId) continue;
    const block = node.dataset.blockId;
    (values[block] = values[block] || {})[node.dataset.actionId] = node._read();
  }
  return values;
}

async function act(ctx, action) {
  const container = {...ctx.container};
  if (ctx.root) container.values = stateValues(ctx.root);
  await api("action", {container, action});
}

// ------------------------------------------------------------------------------------------ surfaces

function initials(name) {
  return (name || "?").split(/[\s.-]+/).map((w) => w[0] || "").join("").slice(0, 2).toUpperCase();
}

function renderMessage(m) {
  const bot = Boolean(m.bot_id);
  const name = bot ? "lma-bot" : (S.data.people.find((p) => p.id === m.user) || {name: m.user}).name;
  const time = new Date(Number(m.ts) * 1000);
  const ctx = {surface: "message", container: {type: "message", channel: m.channel, ts: m.ts}};
  const body = h("div", {class: "body"},
    h("div", {class: "meta"}, h("b", {}, name), bot ? h("span", {class: "app"}, "APP") : null,
      " ", h("span", {class: "time"}, isNaN(time) ? "" : time.toLocaleTimeString()),
      m.for_user ? h("span", {class: "only"}, " · Only visible to you") : null));
  if (m.blocks && m.blocks.length) body.append(renderBlocks(m.blocks, ctx));
  else body.append(h("div", {class: "mrkdwn", html: mrkdwn(m.text)}));
  if (!m.for_user && !m.thread_ts) {
    body.append(h("button", {type: "button", class: "reply", onclick: () => startThread(m.ts, name)}, "Reply in thread"));
  }
  return h("div", {class: "msg" + (m.for_user ? " ephemeral" : "") + (bot ? " from-bot" : ""), "data-ts": m.ts},
    h("div", {class: "avatar" + (bot ? " bot" : "")}, bot ? "LB" : initials(name)), body);
}

function renderConversation(messages) {
  const box = $("#messages");
  const keepBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 60;
  box.innerHTML = "";
  const roots = messages.filter((m) => !m.thread_ts || m.thread_ts === m.ts);
  const replies = messages.filter((m) => m.thread_ts && m.thread_ts !== m.ts);
  if (!messages.length) box.append(h("div", {class: "empty"}, "No messages yet. Type /lead help below."));
  for (const m of roots) {
    box.append(renderMessage(m));
    const mine = replies.filter((r) => r.thread_ts === m.ts);
    if (mine.length) {
      box.append(h("div", {class: "thread", "data-thread": m.ts},
        h("div", {class: "hint-text"}, `${mine.length} ${mine.length === 1 ? "reply" : "replies"}`),
        mine.map(renderMessage)));
    }
  }
  const orphans = replies.filter((r) => !roots.some((m) => m.ts === r.thread_ts));
  for (const r of orphans) box.append(h("div", {class: "thread"}, renderMessage(r)));
  if (keepBottom || !S.scrolled) { box.scrollTop = box.scrollHeight; S.scrolled = true; }
}

function renderHome(view) {
  const box = $("#home");
  box.innerHTML = "";
  if (!view) { box.append(h("div", {class: "empty"}, "Loading the App Home…")); return; }
  const ctx = {surface: "home", container: {type: "home", view_id: view.id}, root: box};
  box.append(renderBlocks(view.blocks, ctx));
}

function renderModal(view, errors) {
  const root = $("#modal-root");
  root.innerHTML = "";
  if (!view) return;
  const content = h("div", {class: "content"});
  const ctx = {surface: "modal", container: {type: "view", view_id: view.id}, errors: errors || {}, root: content};
  content.append(renderBlocks(view.blocks, ctx));
  const close = async () => { await api("close", {view_id: view.id}); };
  const submit = async () => {
    const btn = root.querySelector(".submit");
    const typed = snapshot(root);
    if (btn) btn.disabled = true;
    const answer = await api("submit", {view_id: view.id, values: stateValues(content)});
    if (answer.errors) {
      renderModal(view, answer.errors);
      restoreValues(root, typed);  // Slack keeps what was typed and shows the errors beside it
    } else if (btn) btn.disabled = false;
  };
  root.append(h("div", {class: "overlay"},
    h("div", {class: "modal", role: "dialog", "aria-label": plain(view.title), "data-view-id": view.id,
      "data-callback-id": view.callback_id || ""},
      h("header", {}, h("span", {class: "title"}, plain(view.title)), h("button", {type: "button", class: "x", "aria-label": "Close", onclick: close}, "×")),
      content,
      h("footer", {},
        h("button", {type: "button", class: "btn cancel", onclick: close}, plain(view.close) || "Cancel"),
        view.submit ? h("button", {type: "button", class: "btn primary submit", onclick: submit}, plain(view.submit)) : null))));
}

function snapshot(root) {
  return [...root.querySelectorAll("input, textarea, select")].map((el) =>
    el.type === "checkbox" || el.type === "radio" ? el.checked : (el.multiple ? [...el.selectedOptions].map((o) => o.value) : el.value));
}

function restoreValues(root, values) {
  if (!values) return;
  [...root.querySelectorAll("input, textarea, select")].forEach((el, i) => {
    if (i >= values.length) return;
    if (el.type === "checkbox" || el.type === "radio") el.checked = values[i];
    else if (el.multiple) [...el.options].forEach((o) => { o.selected = values[i].includes(o.value); });
    else el.value = values[i];
  });
}

// --------------------------------------------------------------------------------------------- chrome

function renderChrome(d) {
  const ws = $("#workspace");
  ws.innerHTML = "";
  for (const w of d.workspaces) ws.append(h("option", {value: w.id, selected: w.id === d.team}, w.name));
  const actor = $("#actor");
  actor.innerHTML = "";
  for (const p of d.people.filter((x) => x.role !== "bot")) {
    actor.append(h("option", {value: p.id, selected: p.id === d.user}, `${p.name} (${p.role})`));
  }
  const nav = (id, label, testid) => h("li", {}, h("a", {href: "#", "data-nav": id, "data-testid": testid,
    class: S.nav === id ? "active" : "", onclick: (ev) => { ev.preventDefault(); go(id); }}, label));
  $("#channels").replaceChildren(...d.channels.map((c) => nav(c.id, "# " + c.name, "channel-" + c.name)));
  $("#dms").replaceChildren(nav(d.dm, "lma-bot", "dm-bot"));
  $("#nav-home").className = S.nav === "home" ? "active" : "";
  const home = S.nav === "home";
  $("#messages").hidden = home;
  $("#home").hidden = !home;
  $("#composer").hidden = home;
  const title = home ? "lma-bot · Home" : (S.nav === d.dm ? "lma-bot (direct message)" : "# " + channelName(S.nav));
  $("#title").textContent = title;
  const thread = $("#thread-note");
  thread.hidden = !S.threadTs;
}

function go(nav) {
  S.nav = nav;
  S.threadTs = null;
  S.scrolled = false;
  localStorage.setItem("pg.nav", nav);
  if (nav === "home") api("home", {});
  poll();
}

function startThread(ts, name) {
  S.threadTs = ts;
  const note = $("#thread-note");
  note.hidden = false;
  note.querySelector("span").textContent = `Replying in a thread to ${name}`;
  $("#composer-input").focus();
}

let polling = null;
async function poll() {
  if (polling) { polling.again = true; return; }
  polling = {again: false};
  try {
    const channel = S.nav && S.nav !== "home" ? S.nav : "";
    const q = new URLSearchParams({team: S.team, user: S.user, channel});
    const resp = await fetch("/playground/api/state?" + q);
    const d = await resp.json();
    S.data = d;
    if (S.team !== d.team) { S.team = d.team; localStorage.setItem("pg.team", d.team); }
    if (S.user !== d.user) { S.user = d.user; localStorage.setItem("pg.user", d.user); }
    if (!S.nav || (S.nav !== "home" && S.nav !== d.channel)) { S.nav = d.channel; localStorage.setItem("pg.nav", S.nav); }
    const key = JSON.stringify([d.version, d.team, d.user, S.nav]);
    if (key !== S.rendered) {
      S.rendered = key;
      renderChrome(d);
      if (S.nav === "home") renderHome(d.home); else renderConversation(d.messages);
      const modalKey = d.modal ? d.modal.id + ":" + d.modal.hash : "";
      if (modalKey !== S.modalKey) {
        S.modalKey = modalKey;
        S.modalErrors = null;
        renderModal(d.modal, null);
      }
    }
  } catch (err) {
    console.warn("poll failed", err);
  } finally {
    const again = polling.again;
    polling = null;
    if (again) poll();
  }
}

function init() {
  $("#workspace").addEventListener("change", (ev) => {
    S.team = ev.target.value; S.user = ""; S.nav = "";
    localStorage.setItem("pg.team", S.team);
    poll();
  });
  $("#actor").addEventListener("change", (ev) => {
    S.user = ev.target.value;
    localStorage.setItem("pg.user", S.user);
    if (S.nav === "home") api("home", {}); else poll();
  });
  $("#nav-home").addEventListener("click", (ev) => { ev.preventDefault(); go("home"); });
  $("#thread-cancel").addEventListener("click", () => { S.threadTs = null; $("#thread-note").hidden = true; });
  $("#composer").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const input = $("#composer-input");
    const text = input.value.trim();
    if (!text) return;
    input.value = "";
    await api("send", {channel: S.nav, text, thread_ts: S.threadTs});
  });
  poll();
  setInterval(poll, 700);
}

document.addEventListener("DOMContentLoaded", init);
