// Small DOM helpers the pages share. People's words only ever reach the page as text nodes
// (textContent), never as markup: nothing here parses HTML.

/**
 * An element: h('p', {class: 'x', dir: 'auto', dataset: {qid}}, 'text', child…).
 * Attribute values are set with setAttribute and children appended as nodes or text nodes.
 */
export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === 'dataset') Object.assign(node.dataset, value);
    else if (name === 'text') node.textContent = String(value);
    else node.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** Sets a node's text only when it changes (so screen readers do not announce it again). */
export function setText(node, text) {
  const value = String(text);
  if (node.textContent !== value) node.textContent = value;
}

/** Sets or removes an attribute, touching the DOM only when it changes. */
export function setAttr(node, name, value) {
  if (value === null || value === undefined || value === false) {
    if (node.hasAttribute(name)) node.removeAttribute(name);
    return;
  }
  const text = value === true ? '' : String(value);
  if (node.getAttribute(name) !== text) node.setAttribute(name, text);
}

/**
 * Makes `list`'s children follow `items`, reusing each item's node (keyed by `keyOf`) so that
 * focus, open disclosures and screen-reader position survive live updates. New nodes come from
 * `build(item)`; every node, new or old, goes through `update(node, item)`.
 */
export function syncList(list, items, keyOf, build, update) {
  const existing = new Map();
  for (const child of list.children) existing.set(child.dataset.key, child);
  let cursor = list.firstElementChild;
  for (const item of items) {
    const key = keyOf(item);
    let node = existing.get(key);
    if (node) {
      existing.delete(key);
    } else {
      node = build(item);
      node.dataset.key = key;
    }
    // Placed first, updated second: an update that rebuilds a node and refocuses inside it
    // must not be undone by a move afterwards (moving a node blurs what it contains).
    if (node === cursor) cursor = cursor.nextElementSibling;
    else list.insertBefore(node, cursor);
    update(node, item);
  }
  for (const node of existing.values()) node.remove();
}

/**
 * Runs `change` (which may move nodes around) and gives the keyboard focus back to the element
 * that had it: moving a node in the DOM blurs it, which would throw a keyboard user back to the
 * top.
 */
export function keepFocus(change) {
  const focused = document.activeElement;
  change();
  const lost = focused && focused !== document.body && document.activeElement !== focused;
  if (lost && focused.isConnected) {
    focused.focus({ preventScroll: true });
  }
}

/** Whether a key press happens while the person is typing (in a field, a select, an editor). */
export function typingIn(target) {
  if (!(target instanceof Element)) return false;
  if (target.isContentEditable) return true;
  return Boolean(target.closest('input, textarea, select'));
}
