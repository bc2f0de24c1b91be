// Corral admin page script. Served from /admin/assets (the CSP forbids inline scripts); no build step.
(() => {
  const $ = (sel, root = document) => root.querySelector(sel);
  const $$ = (sel, root = document) => [...root.querySelectorAll(sel)];
  const csrf = () => $('meta[name="csrf-token"]')?.content ?? '';

  // ---- theme: OS preference unless the user picked one ----
  const saved = localStorage.getItem('corral-theme');
  if (saved) document.documentElement.dataset.theme = saved;
  document.addEventListener('click', (e) => {
    if (!e.target.closest('[data-theme-toggle]')) return;
    const dark = document.documentElement.dataset.theme
      ? document.documentElement.dataset.theme === 'dark'
      : matchMedia('(prefers-color-scheme: dark)').matches;
    const next = dark ? 'light' : 'dark';
    document.documentElement.dataset.theme = next;
    localStorage.setItem('corral-theme', next);
  });

  // The API's error bodies are JSON ({"error": "..."} or {"error": {"message": "..."}}): show the sentence.
  function messageOf(text, fallback) {
    try {
      const j = JSON.parse(text);
      return j.error?.message ?? j.error ?? fallback;
    } catch {
      return text || fallback;
    }
  }

  // ---- HTMX errors: htmx does not swap 4xx/5xx answers, so say what went wrong ----
  document.addEventListener('htmx:responseError', (e) => {
    const flash = $('#flash');
    if (!flash) return;
    const xhr = e.detail.xhr;
    flash.textContent = `${xhr.status}: ${messageOf(xhr.responseText, xhr.statusText).slice(0, 300)}`;
    flash.hidden = false;
  });
  document.addEventListener('htmx:sendError', () => {
    const flash = $('#flash');
    if (flash) {
      flash.textContent = 'Corral did not answer; is it running?';
      flash.hidden = false;
    }
  });
  document.addEventListener('htmx:afterRequest', (e) => {
    if (e.detail.successful) {
      const flash = $('#flash');
      if (flash) flash.hidden = true;
    }
  });

  // ---- live fragments over SSE: the server sends rendered (escaped) HTML, we swap it in ----
  for (const host of $$('[data-sse]')) {
    const es = new EventSource(host.dataset.sse);
    es.addEventListener(host.dataset.sseEvent, (ev) => {
      const target = $(host.dataset.sseTarget, host);
      if (!target) return;
      // Keep keyboard focus on the same control across the swap.
      const active = document.activeElement;
      const key = active && target.contains(active) ? focusKey(active) : undefined;
      const tpl = document.createElement('template');
      tpl.innerHTML = ev.data;
      const next = tpl.content.firstElementChild;
      if (!next) return;
      target.replaceWith(next);
      if (window.htmx) window.htmx.process(next);
      if (key)
        $$('button, a', next)
          .find((el) => focusKey(el) === key)
          ?.focus();
    });
  }
  function focusKey(el) {
    const form = el.closest('form');
    return `${form?.getAttribute('action') ?? ''}|${form?.querySelector('[name="model"]')?.value ?? ''}|${el.getAttribute('href') ?? el.textContent}`;
  }

  // ---- live log tail: follow, pause, search ----
  for (const pre of $$('[data-log-src]')) {
    const lines = [];
    const MAX = 5000;
    let paused = false;
    let filter = '';
    const follow = $('[data-log-follow]');
    const pauseBtn = $('[data-log-pause]');
    const search = $('[data-log-search]');
    const status = $('[data-log-status]');
    const matches = (l) => !filter || l.toLowerCase().includes(filter);
    const render = () => {
      pre.textContent = `${lines.filter(matches).join('\n')}\n`;
      if (follow?.checked) pre.scrollTop = pre.scrollHeight;
    };
    const es = new EventSource(pre.dataset.logSrc);
    es.addEventListener('log', (ev) => {
      lines.push(ev.data);
      if (lines.length > MAX) lines.splice(0, lines.length - MAX);
      if (paused) {
        status.textContent = 'paused';
        return;
      }
      if (matches(ev.data)) {
        pre.append(`${ev.data}\n`);
        if (follow?.checked) pre.scrollTop = pre.scrollHeight;
      }
    });
    es.onopen = () => {
      if (status) status.textContent = 'live';
    };
    es.onerror = () => {
      if (status) status.textContent = 'reconnecting…';
    };
    pauseBtn?.addEventListener('click', () => {
      paused = !paused;
      pauseBtn.setAttribute('aria-pressed', String(paused));
      pauseBtn.textContent = paused ? 'Resume' : 'Pause';
      if (!paused) {
        status.textContent = 'live';
        render();
      }
    });
    search?.addEventListener('input', () => {
      filter = search.value.toLowerCase();
      render();
    });
  }

  // ---- NDJSON streaming helper ----
  async function* ndjson(res) {
    const reader = res.body.getReader();
    const dec = new TextDecoder();
    let buf = '';
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      buf += dec.decode(value, { stream: true });
      let i;
      while ((i = buf.indexOf('\n')) !== -1) {
        const line = buf.slice(0, i).trim();
        buf = buf.slice(i + 1);
        if (line) yield JSON.parse(line);
      }
    }
    if (buf.trim()) yield JSON.parse(buf);
  }
  const api = (url, method, body, signal) =>
    fetch(url, {
      method,
      signal,
      headers: { 'content-type': 'application/json', 'x-csrf-token': csrf() },
      body: JSON.stringify(body),
    });
  const errorText = async (res) => messageOf(await res.text(), res.statusText);

  // The playground's script (playground.js) streams and saves through the same helpers.
  window.corralApi = { ndjson, api, errorText };

  // ---- pull and delete ----
  const pull = $('[data-pull]');
  if (pull) {
    const box = $('[data-pull-progress]', pull);
    const bar = $('progress', box);
    const status = $('[data-pull-status]', box);
    pull.addEventListener('submit', async (e) => {
      e.preventDefault();
      box.hidden = false;
      bar.removeAttribute('value');
      status.textContent = 'starting…';
      try {
        const res = await api('/api/pull', 'POST', { model: pull.model.value.trim(), stream: true });
        if (!res.ok) throw new Error(await errorText(res));
        for await (const p of ndjson(res)) {
          if (p.error) throw new Error(p.error);
          if (p.total) {
            bar.max = p.total;
            bar.value = p.completed ?? 0;
            status.textContent = `${p.status} ${Math.round(((p.completed ?? 0) / p.total) * 100)}%`;
          } else status.textContent = p.status ?? '';
        }
        status.textContent = 'done';
        bar.value = bar.max;
        setTimeout(() => location.reload(), 800);
      } catch (err) {
        status.textContent = `failed: ${err.message}`;
      }
    });
  }
  document.addEventListener('click', async (e) => {
    const btn = e.target.closest('[data-delete]');
    if (!btn) return;
    const name = btn.dataset.delete;
    const summary = btn.dataset.deleteSummary;
    if (!confirm(`Delete ${name}? This ${summary}.`)) return;
    const res = await api('/api/delete', 'DELETE', { model: name });
    const status = $('[data-delete-status]');
    if (res.ok) {
      btn.closest('tr')?.remove();
      if (status) status.textContent = `Deleted ${name}: ${summary}.`;
    } else if (status) status.textContent = `Delete of ${name} failed: ${await errorText(res)}`;
  });

  // ---- copy buttons ----
  document.addEventListener('click', async (e) => {
    const btn = e.target.closest('[data-copy]');
    if (!btn) return;
    const field = $(btn.dataset.copy);
    try {
      await navigator.clipboard.writeText(field.value);
    } catch {
      field.select();
      document.execCommand('copy');
    }
    btn.textContent = 'Copied';
  });
})();
