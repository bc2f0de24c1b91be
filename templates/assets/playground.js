// The playground: conversations kept per user (/admin/conversations), answers streamed from /api/chat.
(() => {
  const pg = document.querySelector('[data-playground]');
  if (!pg || !window.corralApi) return;
  const { ndjson, api, errorText } = window.corralApi;
  const $ = (sel, root = pg) => root.querySelector(sel);
  const chat = $('[data-chat]');
  const timings = $('[data-timings]');
  const stopBtn = $('[data-stop]');
  const sendBtn = $('[data-send]');
  const regenBtn = $('[data-regenerate]');
  const list = document.querySelector('[data-conversation-list]');
  const imagesField = $('[data-images]');
  const OPTION_FIELDS = ['temperature', 'num_predict', 'seed', 'top_k', 'top_p', 'num_ctx'];

  let convo = { id: pg.dataset.conversation || null, title: '', messages: [] };
  let ctrl;
  let busy = false;

  const options = () => {
    const out = {};
    for (const f of OPTION_FIELDS) if (pg[f].value !== '') out[f] = Number(pg[f].value);
    return out;
  };
  const fields = () => ({ model: pg.model.value, system: pg.system.value, options: options() });

  const imageType = (b64) =>
    b64.startsWith('/9j/')
      ? 'image/jpeg'
      : b64.startsWith('R0lG')
        ? 'image/gif'
        : b64.startsWith('UklG')
          ? 'image/webp'
          : 'image/png';
  const report = (err) => {
    const flash = document.querySelector('#flash');
    if (!flash) return;
    flash.textContent = err.message;
    flash.hidden = false;
  };

  // ---- rendering ----
  const bubble = (m) => {
    const div = document.createElement('div');
    div.className = `msg ${m.role}`;
    div.textContent = m.content;
    for (const img of m.images ?? []) {
      const el = document.createElement('img');
      el.src = `data:${imageType(img)};base64,${img}`;
      el.alt = 'attached image';
      div.append(el);
    }
    chat.append(div);
    return div;
  };
  const render = () => {
    chat.replaceChildren();
    for (const m of convo.messages) bubble(m);
    buttons();
  };
  const buttons = () => {
    sendBtn.disabled = busy;
    stopBtn.disabled = !busy;
    regenBtn.disabled = busy || !convo.messages.some((m) => m.role === 'user');
    for (const a of pg.querySelectorAll('[data-export]')) {
      a.hidden = !convo.id;
      if (convo.id) a.href = `/admin/conversations/${convo.id}/export?format=${a.dataset.export}`;
    }
  };
  const showVision = () => {
    imagesField.hidden = pg.model.selectedOptions[0]?.dataset.vision !== 'true';
  };
  const showTimings = (rows) => {
    timings.replaceChildren();
    for (const [k, v] of rows) {
      const dt = document.createElement('dt');
      dt.textContent = k;
      const dd = document.createElement('dd');
      dd.textContent = v;
      timings.append(dt, dd);
    }
  };
  const listItem = (c) => {
    const li = document.createElement('li');
    li.dataset.id = c.id;
    const a = document.createElement('a');
    a.href = `/admin/playground?c=${c.id}`;
    a.textContent = c.title;
    const rename = document.createElement('button');
    rename.type = 'button';
    rename.dataset.rename = '';
    rename.textContent = '✎';
    rename.setAttribute('aria-label', `Rename ${c.title}`);
    const remove = document.createElement('button');
    remove.type = 'button';
    remove.dataset.remove = '';
    remove.textContent = '✕';
    remove.setAttribute('aria-label', `Delete ${c.title}`);
    li.append(a, rename, remove);
    return li;
  };
  const markCurrent = () => {
    for (const a of list.querySelectorAll('a')) {
      if (a.closest('li').dataset.id === convo.id) a.setAttribute('aria-current', 'true');
      else a.removeAttribute('aria-current');
    }
  };

  // ---- persistence ----
  async function save() {
    const body = { ...fields(), messages: convo.messages, title: convo.title || undefined };
    const res = convo.id
      ? await api(`/admin/conversations/${convo.id}`, 'PATCH', body)
      : await api('/admin/conversations', 'POST', body);
    if (!res.ok) throw new Error(`saving the conversation failed: ${await errorText(res)}`);
    const saved = await res.json();
    if (!convo.id) {
      convo.id = saved.id;
      history.replaceState(null, '', `/admin/playground?c=${saved.id}`);
      list.prepend(listItem(saved));
    }
    convo.title = saved.title;
    const a = list.querySelector(`li[data-id="${saved.id}"] a`);
    if (a) a.textContent = saved.title;
    markCurrent();
    buttons();
  }
  async function load(id) {
    const res = await fetch(`/admin/conversations/${id}`);
    if (!res.ok) {
      convo = { id: null, title: '', messages: [] };
      history.replaceState(null, '', '/admin/playground');
      return render();
    }
    const c = await res.json();
    convo = { id: c.id, title: c.title, messages: c.messages };
    if ([...pg.model.options].some((o) => o.value === c.model)) pg.model.value = c.model;
    pg.system.value = c.system ?? '';
    for (const f of OPTION_FIELDS)
      pg[f].value = c.options?.[f] ?? (f === 'temperature' || f === 'num_predict' ? pg[f].defaultValue : '');
    if (c.system || ['top_k', 'top_p', 'num_ctx'].some((f) => c.options?.[f] !== undefined))
      $('[data-options]').open = true;
    showVision();
    markCurrent();
    render();
  }
  const readImages = () =>
    Promise.all(
      [...(pg.images?.files ?? [])].map(
        (file) =>
          new Promise((resolve, reject) => {
            const reader = new FileReader();
            reader.onload = () => resolve(String(reader.result).replace(/^data:[^,]*,/, ''));
            reader.onerror = () => reject(reader.error);
            reader.readAsDataURL(file);
          }),
      ),
    );

  // ---- streaming an answer to the conversation so far ----
  async function answer() {
    const out = bubble({ role: 'assistant', content: '' });
    out.dataset.testid = 'answer';
    const system = pg.system.value.trim();
    const messages = [...(system ? [{ role: 'system', content: system }] : []), ...convo.messages];
    ctrl = new AbortController();
    busy = true;
    buttons();
    const t0 = performance.now();
    let ttft;
    let text = '';
    try {
      const res = await api(
        '/api/chat',
        'POST',
        { model: pg.model.value, messages, stream: true, options: options() },
        ctrl.signal,
      );
      if (!res.ok) throw new Error(await errorText(res));
      for await (const chunk of ndjson(res)) {
        if (chunk.error) throw new Error(chunk.error);
        const piece = chunk.message?.content ?? '';
        if (piece && ttft === undefined) ttft = performance.now() - t0;
        text += piece;
        out.textContent = text;
        if (chunk.done) showTimings(timingRows(chunk, ttft));
      }
      convo.messages.push({ role: 'assistant', content: text });
    } catch (err) {
      if (err.name === 'AbortError') {
        out.classList.add('stopped');
        convo.messages.push({ role: 'assistant', content: text });
      } else {
        out.classList.add('error');
        out.textContent = `${text}\n[error: ${err.message}]`;
      }
    } finally {
      busy = false;
      buttons();
    }
    await save().catch(report);
    pg.prompt.focus();
  }
  const timingRows = (c, ttft) => {
    const s = (ns) => `${(ns / 1e9).toFixed(2)} s`;
    const rate = (n, ns) => (ns ? `${(n / (ns / 1e9)).toFixed(1)} tokens/s` : '—');
    return [
      ['Time to first token', ttft === undefined ? '—' : `${Math.round(ttft)} ms`],
      ['Tokens generated', String(c.eval_count ?? '—')],
      ['Generation speed', rate(c.eval_count, c.eval_duration)],
      ['Prompt tokens', String(c.prompt_eval_count ?? '—')],
      ['Prompt speed', rate(c.prompt_eval_count, c.prompt_eval_duration)],
      ['Load time', c.load_duration !== undefined ? s(c.load_duration) : '—'],
      ['Total', c.total_duration !== undefined ? s(c.total_duration) : '—'],
      ['Stop reason', c.done_reason ?? '—'],
    ];
  };

  // ---- controls ----
  pg.prompt.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) pg.requestSubmit();
  });
  pg.model.addEventListener('change', showVision);
  for (const name of ['model', 'system', ...OPTION_FIELDS]) {
    pg[name].addEventListener('change', () => {
      if (convo.id && !busy) save().catch(report);
    });
  }
  pg.addEventListener('submit', async (e) => {
    e.preventDefault();
    const text = pg.prompt.value.trim();
    if (!text || busy) return;
    const images = await readImages();
    const m = { role: 'user', content: text, ...(images.length ? { images } : {}) };
    pg.prompt.value = '';
    if (pg.images) pg.images.value = '';
    if (!convo.title) convo.title = text.replace(/\s+/g, ' ').slice(0, 60);
    convo.messages.push(m);
    bubble(m);
    // Saved before the answer streams: a reload mid-answer keeps the question.
    await save().catch(report);
    await answer();
  });
  stopBtn.addEventListener('click', () => ctrl?.abort());
  regenBtn.addEventListener('click', async () => {
    if (busy) return;
    while (convo.messages.length && convo.messages.at(-1).role === 'assistant') convo.messages.pop();
    render();
    await answer();
  });
  $('[data-clear]').addEventListener('click', () => {
    convo.messages = [];
    render();
    timings.replaceChildren();
    if (convo.id) save().catch(report);
  });
  document.querySelector('[data-new-conversation]').addEventListener('click', () => {
    convo = { id: null, title: '', messages: [] };
    history.replaceState(null, '', '/admin/playground');
    pg.system.value = '';
    markCurrent();
    render();
    timings.replaceChildren();
    pg.prompt.focus();
  });
  list.addEventListener('click', async (e) => {
    const li = e.target.closest('li');
    if (!li) return;
    const id = li.dataset.id;
    if (e.target.closest('[data-rename]')) {
      const title = prompt('New title', li.querySelector('a').textContent);
      if (!title?.trim()) return;
      const res = await api(`/admin/conversations/${id}`, 'PATCH', { title: title.trim() });
      if (!res.ok) return alert(`Rename failed: ${await errorText(res)}`);
      li.querySelector('a').textContent = title.trim();
      if (id === convo.id) convo.title = title.trim();
    } else if (e.target.closest('[data-remove]')) {
      if (!confirm(`Delete "${li.querySelector('a').textContent}"?`)) return;
      const res = await fetch(`/admin/conversations/${id}`, {
        method: 'DELETE',
        headers: { 'x-csrf-token': document.querySelector('meta[name="csrf-token"]')?.content ?? '' },
      });
      if (!res.ok) return alert(`Delete failed: ${await errorText(res)}`);
      li.remove();
      if (id === convo.id) document.querySelector('[data-new-conversation]').click();
    }
  });

  showVision();
  if (convo.id) load(convo.id);
  else buttons();
})();
