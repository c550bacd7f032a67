/**
 * A tiny DOM builder: elements from tag, attributes and children. Text is always set as text
 * (never HTML), so nothing the API returns can inject markup; no inline styles (the CSP has no
 * 'unsafe-inline').
 */
export type Child = Node | string | number | null | undefined | false;
type Handler = (event: Event) => void;
export type Props = Record<string, string | number | boolean | Handler | undefined>;

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, props: Props = {}, ...children: (Child | Child[])[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === undefined || value === false) continue;
    if (name === 'style') throw new Error('inline styles are not allowed by the CSP');
    if (typeof value === 'function') el.addEventListener(name.replace(/^on/, ''), value);
    else if (name === 'value' && (el instanceof HTMLInputElement || el instanceof HTMLTextAreaElement || el instanceof HTMLSelectElement)) el.value = String(value);
    else if (name === 'checked' && el instanceof HTMLInputElement) el.checked = value === true;
    else el.setAttribute(name === 'className' ? 'class' : name, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

export function append(el: Element, children: (Child | Child[])[]): void {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(typeof child === 'number' ? String(child) : child);
  }
}

let ids = 0;
/** A unique id for label/input pairs. */
export function uid(prefix: string): string {
  ids += 1;
  return `${prefix}-${ids}`;
}

/** A labelled input (the label wraps it, and `for` names it too). */
export function field(label: string, input: HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement, className?: string): HTMLLabelElement {
  if (input.id === '') input.id = uid('f');
  return h('label', { for: input.id, ...(className !== undefined && { class: className }) }, label, input);
}

export function checkbox(label: string, props: Props = {}): { label: HTMLLabelElement; input: HTMLInputElement } {
  const input = h('input', { type: 'checkbox', id: uid('c'), ...props });
  return { label: h('label', { for: input.id, class: 'check' }, input, label), input };
}

export function select(name: string, options: readonly (string | [string, string])[], value?: string): HTMLSelectElement {
  const el = h('select', { name });
  for (const option of options) {
    const [v, text] = typeof option === 'string' ? [option, option] : option;
    el.append(h('option', { value: v }, text));
  }
  if (value !== undefined) el.value = value;
  return el;
}

export function tableOf<T>(caption: string, columns: [string, (item: T) => Child | Child[]][], items: readonly T[], empty: string): HTMLElement {
  if (items.length === 0) return h('p', { class: 'muted' }, empty);
  return h(
    'div',
    { class: 'table-wrap' },
    h(
      'table',
      {},
      h('caption', { class: 'skip' }, caption),
      h('thead', {}, h('tr', {}, columns.map(([title]) => h('th', { scope: 'col' }, title)))),
      h(
        'tbody',
        {},
        items.map((item) => h('tr', {}, columns.map(([title, value]) => h('td', { 'data-col': title }, value(item))))),
      ),
    ),
  );
}

export function badge(text: string, kind = text): HTMLSpanElement {
  return h('span', { class: `badge ${kind}` }, text);
}
