// Forms of the dashboard: submitted with fetch (no reload) to the same URL they post to without JavaScript,
// errors shown inline next to their fields, list items added and removed. The server (pydantic) validates.
import { csrfToken, toast } from "./ui.js";

/** Put the server's errors ([{field, msg}], field null for the whole form) next to their fields. */
export function showErrors(form, message, errors = []) {
  clearErrors(form);
  const box = form.querySelector("[data-form-errors]");
  const general = [];
  let first = null;
  for (const e of errors) {
    const field = e.field ? form.querySelector(`[data-field="${CSS.escape(e.field)}"]`) : null;
    if (!field) {
      general.push(e.msg);
      continue;
    }
    const slot = field.querySelector(":scope > .field-error");
    if (slot) {
      slot.textContent = slot.hidden ? e.msg : `${slot.textContent} ${e.msg}`;
      slot.hidden = false;
    }
    field.classList.add("has-error");
    const control = field.querySelector(":scope > input, :scope > select, :scope > textarea, :scope > label > input");
    if (control) control.setAttribute("aria-invalid", "true");
    first ??= control ?? field;
  }
  if (!errors.length && message) general.push(message);
  if (box) {
    box.innerHTML = "";
    const lines = general.length ? general : message ? [message] : [];
    for (const line of lines) {
      const p = document.createElement("p");
      p.textContent = line;
      box.append(p);
    }
    box.hidden = lines.length === 0;
  } else if (general.length) {
    toast(general.join(" "), "error", 8000);
  }
  (first ?? (box && !box.hidden ? box : null))?.focus?.();
  if (first && first.scrollIntoView) first.scrollIntoView({ block: "center", behavior: "smooth" });
}

export function clearErrors(form) {
  for (const slot of form.querySelectorAll(".field-error")) {
    slot.textContent = "";
    slot.hidden = true;
  }
  for (const el of form.querySelectorAll(".has-error")) el.classList.remove("has-error");
  for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
  const box = form.querySelector("[data-form-errors]");
  if (box) {
    box.innerHTML = "";
    box.hidden = true;
  }
}

async function submit(form, submitter) {
  if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) return;
  const body = new FormData(form, submitter); // first: a disabled submitter's name and value would not be sent
  const buttons = form.querySelectorAll("button[type=submit], button:not([type])");
  buttons.forEach((b) => (b.disabled = true));
  form.setAttribute("aria-busy", "true");
  let response;
  let data;
  try {
    response = await fetch(form.action, {
      method: "POST",
      body,
      credentials: "same-origin",
      headers: { Accept: "application/json", "X-CSRFToken": csrfToken() },
    });
    data = await response.json();
  } catch (err) {
    toast(response ? `The server answered ${response.status}.` : "Could not reach the server; try again.", "error");
    return;
  } finally {
    buttons.forEach((b) => (b.disabled = false));
    form.removeAttribute("aria-busy");
  }
  if (data.ok) {
    clearErrors(form);
    if (data.redirect) {
      window.location.assign(data.redirect);
      return;
    }
    if (data.message) toast(data.message, "success");
    document.dispatchEvent(new CustomEvent("workflows:action", { detail: { form, data } }));
  } else {
    showErrors(form, data.message || `Failed (${response.status})`, data.errors || []);
    showExisting(form, data.existing);
    if (!form.querySelector("[data-form-errors]") && data.message && !(data.errors || []).length) toast(data.message, "error", 8000);
    document.dispatchEvent(new CustomEvent("workflows:action-failed", { detail: { form, data } }));
  }
}

/** A launch whose idempotency key has a run already: a link to that run beside the key (launch.existing_message). */
function showExisting(form, existing) {
  const slot = form.querySelector("[data-existing-run]");
  if (!slot) return;
  slot.hidden = !existing;
  slot.textContent = "";
  if (!existing) return;
  const box = form.querySelector("[data-form-errors]");
  if (box) box.hidden = true; // the message is beside the key, with the link: once is enough
  const link = document.createElement("a");
  link.href = existing.url;
  link.textContent = `Open run #${existing.id} →`;
  slot.append(link);
}

// --- lists: add and remove items ------------------------------------------------------------------------------

function renumber(node, index) {
  // only the first "__index__" in each name/id is this list's: deeper ones belong to nested lists' templates
  const fix = (value) => value.replace("__index__", String(index));
  for (const el of [node, ...node.querySelectorAll("*")]) {
    for (const attr of ["name", "id", "for", "data-field"]) {
      if (el.hasAttribute?.(attr)) el.setAttribute(attr, fix(el.getAttribute(attr)));
    }
    if (el.hasAttribute?.("aria-describedby")) {
      el.setAttribute("aria-describedby", el.getAttribute("aria-describedby").split(" ").map(fix).join(" "));
    }
    if (el.tagName === "TEMPLATE") renumber(el.content, index);
  }
}

function firstFreeIndex(fieldset, list) {
  // the items the server rendered may have gaps in their indices (after a failed submit): start past the highest
  const prefix = `${fieldset.dataset.field}.`;
  let max = -1;
  for (const mark of list.querySelectorAll(":scope > .array-item > input[type=hidden]")) {
    const index = Number(mark.name.slice(prefix.length).split(".")[0]);
    if (Number.isInteger(index)) max = Math.max(max, index);
  }
  return max + 1;
}

function addItem(fieldset) {
  const list = fieldset.querySelector(":scope > [data-array-items]");
  const template = fieldset.querySelector(":scope > template[data-array-template]");
  if (!list || !template) return;
  const next = Number(fieldset.dataset.nextIndex ?? firstFreeIndex(fieldset, list));
  fieldset.dataset.nextIndex = String(next + 1);
  const item = template.content.firstElementChild.cloneNode(true);
  renumber(item, next);
  list.append(item);
  item.querySelector("input:not([type=hidden]), select, textarea")?.focus();
}

document.addEventListener("click", (event) => {
  const add = event.target.closest("[data-add-item]");
  if (add) {
    event.preventDefault();
    addItem(add.closest("[data-array]"));
    return;
  }
  const remove = event.target.closest("[data-remove-item]");
  if (remove) {
    event.preventDefault();
    const fieldset = remove.closest("[data-array]");
    remove.closest(".array-item")?.remove();
    fieldset?.querySelector(":scope > [data-add-item]")?.focus();
  }
});

document.addEventListener("submit", (event) => {
  const form = event.target.closest("form[data-ajax-form]");
  if (!form) return;
  event.preventDefault();
  submit(form, event.submitter);
});
