// Measures a rendered screen for the visual rules (tests/web/visual.py): text sizes and
// contrast from the computed colours, touch targets, key figures, primary actions, errors.
() => {
  const parse = (c) => {
    const m = /rgba?\(([^)]+)\)/.exec(c || '');
    if (!m) return null;
    const p = m[1].split(/[ ,\/]+/).filter(Boolean).map(Number);
    return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
  };
  const blend = (top, under) => {
    const a = top[3];
    return [0, 1, 2].map((i) => top[i] * a + under[i] * (1 - a)).concat([1]);
  };
  const bgOf = (el) => {
    const stack = [];
    for (let e = el; e && e.nodeType === 1; e = e.parentElement) {
      const cs = getComputedStyle(e);
      let c = parse(cs.backgroundColor);
      if ((!c || c[3] === 0) && cs.backgroundImage && cs.backgroundImage !== 'none') {
        c = parse(cs.backgroundImage); // a gradient: its first stop
      }
      if (c && c[3] > 0) {
        stack.push(c);
        if (c[3] >= 1) break;
      }
    }
    let out = [255, 255, 255, 1];
    for (let i = stack.length - 1; i >= 0; i--) out = blend(stack[i], out);
    return out;
  };
  const lum = (c) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]);
  };
  const ratio = (a, b) => { const x = lum(a), y = lum(b); return (Math.max(x, y) + 0.05) / (Math.min(x, y) + 0.05); };
  const vw = innerWidth, vh = innerHeight;
  const shown = (el) => {
    const r = el.getBoundingClientRect();
    if (r.width <= 0 || r.height <= 0 || r.bottom <= 0 || r.top >= vh || r.right <= 0 || r.left >= vw) return false;
    for (let e = el; e && e.nodeType === 1; e = e.parentElement) {
      const cs = getComputedStyle(e);
      if (cs.display === 'none' || cs.visibility === 'hidden' || Number(cs.opacity) === 0) return false;
    }
    return true;
  };
  const label = (el) => (el.getAttribute('data-test') || el.className || el.tagName).toString().slice(0, 60);
  const texts = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const seen = new Set();
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const t = n.textContent.trim();
    const el = n.parentElement;
    if (!t || !el || seen.has(el) || !shown(el)) continue;
    if (el.closest('script,style,noscript')) continue;
    seen.add(el);
    const cs = getComputedStyle(el);
    const fg = parse(cs.color);
    const bg = bgOf(el);
    const size = parseFloat(cs.fontSize);
    const weight = parseInt(cs.fontWeight, 10) || 400;
    const disabled = !!el.closest('.disabled,[disabled]');
    texts.push({ text: t.slice(0, 30), el: label(el), size, weight,
      contrast: fg ? ratio(blend(fg, bg), bg) : 21, fg, bg, disabled });
  }
  const figures = [...document.querySelectorAll('[data-figure]')].filter(shown)
    .map((el) => ({ el: label(el), text: el.textContent.trim().slice(0, 20), size: parseFloat(getComputedStyle(el).fontSize) }));
  const targetSel = '.tap,.btn-primary,.btn-secondary,.link,.chip,[role=button],uni-button,uni-input,' +
    '.uni-tabbar__item,.uni-page-head-btn,[data-test=nozzle],[data-test=provider],[data-test=preset]';
  const targets = [...document.querySelectorAll(targetSel)].filter(shown).map((el) => {
    const r = el.getBoundingClientRect();
    return { el: label(el), text: el.textContent.trim().slice(0, 20), w: r.width, h: r.height };
  });
  const primaries = [...document.querySelectorAll('[data-test=primary]')].filter(shown).map((el) => {
    const r = el.getBoundingClientRect();
    const cs = getComputedStyle(el);
    return { text: el.textContent.trim(), cy: (r.top + r.height / 2) / vh, w: r.width, h: r.height,
      bg: parse(cs.backgroundColor), fg: parse(cs.color), disabled: el.classList.contains('disabled') };
  });
  const errors = [...document.querySelectorAll('.error-text,[data-test=error] .msg')].filter(shown)
    .map((el) => ({ text: el.textContent.trim().slice(0, 30), fg: parse(getComputedStyle(el).color) }));
  return { texts, figures, targets, primaries, errors, vh, vw };
}
