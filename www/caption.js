// The caption: the narration a learner reads first. The current beat's text in large type, its
// number ("3 of 6"), previous and next, and ☰ the transcript of every beat, each a link to its
// moment. The playground and <broker-lab> build the same caption (the element inside its
// shadow root). DOM only: it draws nothing and never touches the engine; it calls back.
//
//   const caption = createCaption(document, { onPrev, onNext, onBeat(index) });
//   parent.append(caption.root);
//   caption.show({ plan, index, intro, name });   // on every paint; writes only on change

const seconds = (ms) => `${(ms / 1000).toFixed(ms < 10000 ? 2 : 1)} s`;

/** The first `n` sentences of a description: what a caption shows before the first beat. */
export function lead(description, n = 2) {
  const sentences = description.split(/(?<=[.!?])\s+/);
  return sentences.length > n ? `${sentences.slice(0, n).join(' ')} …` : description;
}

/**
 * Builds the caption's DOM in `doc` (a document; the element passes its own). `handlers`:
 * onPrev(), onNext(), onBeat(index). `about`: a description to keep one click away under ⓘ
 * (the element's; the page has its own in the header).
 */
// long: the caption's elements, built in reading order
export function createCaption(doc, handlers, { about = false } = {}) {
  const el = (tag, props = {}, ...kids) => {
    const e = Object.assign(doc.createElement(tag), props);
    e.append(...kids);
    return e;
  };
  const count = el('span', { className: 'caption-count' });
  const prev = el('button', { type: 'button', className: 'caption-prev', textContent: '‹', title: 'Previous beat' });
  prev.setAttribute('aria-label', 'Previous beat');
  const next = el('button', { type: 'button', className: 'caption-next', textContent: '›', title: 'Next beat' });
  next.setAttribute('aria-label', 'Next beat');
  const list = el('button', { type: 'button', className: 'caption-list', textContent: '☰', title: 'Every beat, in order' });
  list.setAttribute('aria-label', 'Transcript: every beat, in order');
  list.setAttribute('aria-haspopup', 'dialog');
  const nav = el('span', { className: 'caption-nav' }, prev, next, list);
  const text = el('p', { className: 'caption-text' });
  const live = el('p', { className: 'visually-hidden caption-live' });
  live.setAttribute('aria-live', 'polite');
  const aboutText = el('p', { className: 'caption-about-text' });
  const info = el('span', { className: 'info', textContent: 'i' });
  info.setAttribute('aria-hidden', 'true');
  const aboutBox = el('details', { className: 'caption-about' }, el('summary', { title: 'About this scenario' }, info), aboutText);
  aboutBox.querySelector('summary').setAttribute('aria-label', 'About this scenario');
  aboutBox.hidden = !about;
  const items = el('ol', { className: 'transcript-list' });
  const heading = el('h2', { textContent: 'Beats' });
  const close = el('button', { type: 'submit', textContent: 'Close' });
  const dialog = el('dialog', { className: 'transcript' }, heading, items, el('form', { method: 'dialog' }, close));
  dialog.setAttribute('aria-label', 'Transcript: every beat');
  const head = el('div', { className: 'caption-head' }, count, nav, aboutBox);
  const root = el('section', { className: 'caption' }, head, text, live, dialog);
  root.setAttribute('aria-label', 'Narration');

  prev.addEventListener('click', () => handlers.onPrev());
  next.addEventListener('click', () => handlers.onNext());
  list.addEventListener('click', () => dialog.showModal());
  items.addEventListener('click', (e) => {
    const b = e.target.closest('button[data-index]');
    if (!b) return;
    dialog.close();
    handlers.onBeat(Number(b.dataset.index));
  });

  let shown = { key: null, index: null };
  return {
    root,
    /**
     * plan: [{index, text, at_ms, missed, reached}]; index: the beat reached (−1 before the
     * first); intro: what to show before it; description: the text under ⓘ.
     */
    show({ plan, index, intro, description = '' }) {
      const total = plan.length;
      const key = JSON.stringify([plan, index, intro, description]);
      if (key === shown.key) return;
      const beat = index >= 0 ? plan[index] : null;
      count.textContent = beat ? `◆ ${index + 1} of ${total}` : `${total} beat${total === 1 ? '' : 's'} · press Play`;
      text.textContent = beat ? beat.text : intro;
      text.classList.toggle('intro', !beat);
      prev.disabled = index < 0;
      next.disabled = index + 1 >= total || Boolean(plan[index + 1]?.missed);
      if (aboutText.textContent !== description) aboutText.textContent = description;
      items.replaceChildren(...plan.map((b) => {
        const when = b.at_ms !== null ? seconds(b.at_ms) : b.missed ? 'not in this run' : 'later';
        const button = el('button', { type: 'button', disabled: b.at_ms === null && Boolean(b.missed) },
          el('span', { className: 'when', textContent: when }), el('span', { textContent: b.text }));
        button.dataset.index = String(b.index);
        if (b.index === index) button.setAttribute('aria-current', 'step');
        if (b.missed) button.title = b.missed;
        return el('li', {}, button);
      }));
      // A beat reached, by playing or by a jump, is announced; the first paint is not.
      if (beat && shown.index !== null && shown.index !== index) live.textContent = `Beat ${index + 1} of ${total}: ${beat.text}`;
      shown = { key, index };
    },
  };
}
