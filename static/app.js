// The shopper page: live drops, one purchase per click, payment through PayOS, the order page.
// Alpine.js components registered on alpine:init (this file loads before Alpine, both deferred).
'use strict';

const POLL_MS = 1500;          // drops and order polling while the tab is visible
const HIDDEN_POLL_MS = 10000;  // and while it is hidden
const RETRIES = 3;             // network retries of one click (same Idempotency-Key)
const DOUBLE_CLICK_MS = 500;   // a second click this soon after the first is the same intent, not a new purchase

// -- the server's clock: countdowns agree with the server, not with the shopper's clock ----------
// The page carries the server's time when it was rendered; the shopper's clock read when the response
// began to arrive (navigation timing) is the best local estimate of that same moment.
const serverTime = Number(document.querySelector('meta[name="server-time"]')?.content) || 0;
const navigation = (performance.getEntriesByType && performance.getEntriesByType('navigation')[0]) || null;
const renderedAt = navigation && navigation.responseStart > 0 ? performance.timeOrigin + navigation.responseStart : Date.now();
const clockOffset = serverTime > 0 ? serverTime - renderedAt : 0;
const serverNow = () => Date.now() + clockOffset;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function randomHex(bytes) {
  const values = crypto.getRandomValues(new Uint8Array(bytes));  // also outside secure contexts
  return Array.from(values, (b) => b.toString(16).padStart(2, '0')).join('');
}

// A user_id for browsers that refuse the buyer cookie; with a valid cookie the service ignores it.
function fallbackUserId() {
  try {
    let id = localStorage.getItem('dropsvc.user');
    if (!id) { id = 'page-' + randomHex(16); localStorage.setItem('dropsvc.user', id); }
    return id;
  } catch (e) {
    return 'page-' + randomHex(16);
  }
}

// A map by drop id kept in localStorage (nothing kept in private mode): found again after a reload.
function keptByDrop(name) {
  const all = () => { try { return JSON.parse(localStorage.getItem(name) || '{}'); } catch (e) { return {}; } };
  const save = (map) => { try { localStorage.setItem(name, JSON.stringify(map)); } catch (e) { /* private mode */ } };
  return {
    get: (dropId) => all()[dropId] || null,
    put: (dropId, value) => save({ ...all(), [dropId]: value }),
  };
}

const savedOrders = keptByDrop('dropsvc.orders');  // the reservation made from this browser, by drop

// -- formatting -----------------------------------------------------------------------------------
function vnd(amount) {
  return String(amount).replace(/\B(?=(\d{3})+(?!\d))/g, '.') + '\u00a0₫';
}

function pad(n) { return String(n).padStart(2, '0'); }

function duration(ms) {
  const total = Math.max(0, Math.ceil(ms / 1000));
  const d = Math.floor(total / 86400), h = Math.floor(total / 3600) % 24, m = Math.floor(total / 60) % 60, s = total % 60;
  if (d > 0) return `${d}d ${pad(h)}:${pad(m)}:${pad(s)}`;
  if (h > 0) return `${h}:${pad(m)}:${pad(s)}`;
  return `${m}:${pad(s)}`;
}

function clockTime(ms) {
  return new Date(ms - clockOffset).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

// -- HTTP -----------------------------------------------------------------------------------------
async function send(method, path, { body, headers = {} } = {}) {
  const init = { method, headers: { ...headers }, cache: 'no-store', credentials: 'same-origin' };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers['Content-Type'] = 'application/json';
  }
  const response = await fetch(path, init);
  let data = null;
  if (response.status !== 304) data = await response.json().catch(() => null);
  return { status: response.status, data, headers: response.headers };
}

// A GET revalidated with If-None-Match: {body, changed}, the kept body when the answer is a bodiless 304.
function revalidated(path) {
  let etag = null, body = null;
  return async () => {
    const reply = await send('GET', path, { headers: etag ? { 'If-None-Match': etag } : {} });
    if (reply.status === 200 && reply.data) {
      etag = reply.headers.get('ETag');
      body = reply.data;
    } else if (reply.status !== 304 || body === null) {
      throw new Error(`HTTP ${reply.status}`);
    }
    return { body, changed: reply.status === 200 };
  };
}

function retryDelay(reply, attempt) {
  const seconds = Number(reply && reply.headers && reply.headers.get('Retry-After'));
  return seconds > 0 ? Math.min(seconds, 5) * 1000 : 400 * 2 ** attempt;
}

const errorCode = (reply) => (reply.data && reply.data.error && reply.data.error.code) || '';
const errorMessage = (reply) => (reply.data && reply.data.error && reply.data.error.message) || '';

// One click, one purchase: the key is made once per click and reused only to retry that click.
// A queue drop's purchase carries the admitted ticket's token.
async function purchase(dropId, quantity, key, ticketToken) {
  const headers = { 'Idempotency-Key': key, ...(ticketToken ? { 'Admission-Ticket': ticketToken } : {}) };
  let reply = null;
  for (let attempt = 0; attempt <= RETRIES; attempt++) {
    try {
      reply = await send('POST', `/api/drops/${dropId}/purchases`, {
        body: { quantity, user_id: fallbackUserId() }, headers,
      });
      if (reply.status !== 503 && reply.status !== 429) return reply;
    } catch (e) {
      reply = null;  // no answer: the purchase may or may not have happened; the same key finds out
    }
    if (attempt < RETRIES) await sleep(retryDelay(reply, attempt));
  }
  return reply;
}

// -- what a drop is, as the shopper reads it ------------------------------------------------------
const STATE_LABELS = { live: 'Live', upcoming: 'Upcoming', starting: 'Starting', sold_out: 'Sold out', ended: 'Ended' };

const BUY_LABELS = { live: 'Buy', upcoming: 'Not open yet', starting: 'Opening…', sold_out: 'Sold out', ended: 'Ended' };

// When purchases open: at the start, or a draw's at its draw (the close of its entries).
const opensAt = (drop) => (drop.admission === 'draw' ? drop.entries_close_at : drop.starts_at);

function dropState(drop, now) {
  if (drop.status === 'upcoming' && now >= opensAt(drop)) return 'starting';  // the next poll says live
  return drop.status;
}

function purchaseAnswer(reply, drop) {
  if (!reply) return { kind: 'error', text: "We couldn't reach the shop. Try again: the same click won't buy twice." };
  const code = errorCode(reply);
  if (reply.status === 200 || reply.status === 201) return { kind: 'reserved', text: 'Reserved.' };
  const words = {
    sold_out: 'Sold out: every unit is taken. Reservations that are not paid come back, so look again later.',
    per_user_limit: `Limit reached: at most ${drop.per_user_limit} per shopper, and this would take you over it.`,
    not_started: `Not started yet: this drop opens at ${clockTime(opensAt(drop))}.`,
    ended: 'This drop has ended.',
    drop_not_found: 'This drop is no longer available.',
    buyer_required: BUYER_REQUIRED_WORDS,
  };
  if (code === 'not_admitted') return notAdmittedAnswer(reply.data.error.ticket_state);
  if (words[code]) return { kind: code, text: words[code] };
  if (reply.status === 429 || reply.status === 503) return { kind: 'busy', text: 'The shop is very busy. Try again in a moment.' };
  return { kind: 'error', text: errorMessage(reply) || `Something went wrong (HTTP ${reply.status}). Try again.` };
}

const CHECKOUT_WORDS = {
  paid: 'This order is already paid.',
  expired: 'The hold expired before payment.',
  cancelled: 'This order was cancelled.',
  refund_required: 'This order awaits a refund.',
  payments_unavailable: 'Payments are not available right now.',
  payment_gateway_unavailable: 'PayOS does not answer right now. Try again in a moment.',
};

// Create (or reuse) the PayOS link, then go there; returns an error text when that is not possible.
async function checkout(publicRef) {
  try {
    const reply = await send('POST', `/api/orders/${encodeURIComponent(publicRef)}/checkout`);
    if ((reply.status === 200 || reply.status === 201) && reply.data && reply.data.checkout_url) {
      window.location.assign(reply.data.checkout_url);
      return '';
    }
    return CHECKOUT_WORDS[errorCode(reply)] || errorMessage(reply) || 'The payment could not be started. Try again.';
  } catch (e) {
    return "We couldn't reach the shop. Try again.";
  }
}

// -- polling that stops with its component and slows down in a hidden tab -------------------------
// poller(fn) runs fn now and then every POLL_MS until fn returns false (or after the ms fn returns, if a
// number); .now() runs it at once (never two at a time), .stop() ends it.
function poller(fn) {
  let timer = null, stopped = false, running = false, again = false;
  const run = async () => {
    clearTimeout(timer);
    if (stopped) return;
    if (running) { again = true; return; }
    running = true;
    let next = true;
    try { next = await fn(); } finally { running = false; }
    if (stopped || next === false) return;
    if (again) { again = false; run(); return; }
    timer = setTimeout(run, typeof next === 'number' ? next : (document.hidden ? HIDDEN_POLL_MS : POLL_MS));
  };
  const onVisible = () => { if (!document.hidden) run(); };
  document.addEventListener('visibilitychange', onVisible);
  run();
  return {
    now: run,
    stop() { stopped = true; clearTimeout(timer); document.removeEventListener('visibilitychange', onVisible); },
  };
}

document.addEventListener('alpine:init', () => {
  const Alpine = window.Alpine;

  // The root: which view, the ticking clock, the helpers templates use.
  Alpine.data('page', () => ({
    view: window.location.pathname.startsWith('/orders/') ? 'order' : 'drops',
    now: serverNow(),
    init() { this.ticker = setInterval(() => { this.now = serverNow(); }, 250); },
    destroy() { clearInterval(this.ticker); },
    vnd,
    countdown: (at, now) => duration(at - now),
    // the countdown: to the start, or a draw's to its entries opening, then to the draw
    countdownTo: (drop, now) => (drop.admission === 'draw' && now < drop.starts_at ? drop.starts_at : opensAt(drop)),
    countdownText(drop, now) {
      if (dropState(drop, now) === 'starting') return 'Starting now';
      if (drop.admission !== 'draw') return 'Starts in';
      return now < drop.starts_at ? 'Entries open in' : 'The draw in';
    },
    holdLeft: (order, now) => duration(order.expires_at - now),
    isoTime: (ms) => new Date(ms).toISOString(),
    state: dropState,
    stateLabel: (drop, now) => STATE_LABELS[dropState(drop, now)] || drop.status,
    canBuy: (drop, now) => dropState(drop, now) === 'live' && drop.remaining > 0,
    closed: (drop, now) => ['sold_out', 'ended'].includes(dropState(drop, now)),
    buyLabel: (drop, now) => BUY_LABELS[dropState(drop, now)] || 'Buy',
    maxQty: (drop) => Math.max(1, Math.min(drop.per_user_limit, drop.remaining)),
    leftPercent: (drop) => (drop.total_stock > 0 ? Math.round((100 * drop.remaining) / drop.total_stock) : 0),
    stockText(drop) {
      if (drop.remaining <= 0) return 'Sold out';
      return `${drop.remaining} of ${drop.total_stock} left`;
    },
    initials: (name) => (name || '?').split(/\s+/).filter(Boolean).slice(0, 2).map((w) => w[0].toUpperCase()).join(''),
    hue: (id) => String((id * 67) % 360),
  }));

  // The drops, refreshed every 1.5 s with If-None-Match: an unchanged list is a bodiless 304.
  Alpine.data('dropList', () => ({
    drops: [],
    loaded: false,
    error: '',
    init() {
      const fetchList = revalidated('/api/drops');
      this.poll = poller(async () => {
        try {
          const { body, changed } = await fetchList();
          if (changed) this.drops = body.drops;
          this.loaded = true;
          this.error = '';
        } catch (e) {
          this.error = 'Connection lost. Retrying…';
        }
      });
      // a purchase's answer says the stock moved: show it now rather than at the next poll
      this.onAnswer = () => this.poll.now();
      window.addEventListener('dropsvc:answer', this.onAnswer);
    },
    destroy() { this.poll.stop(); window.removeEventListener('dropsvc:answer', this.onAnswer); },
  }));

  // One drop's buying state: kept across polls (x-for reuses the element by drop id).
  Alpine.data('card', () => ({
    qty: 1,
    busy: false,
    settling: false,  // the double-click window after a click: the Buy button stays disabled
    answer: null,
    order: null,
    paying: false,
    payError: '',
    broken: false,
    unanswered: null,  // {key, qty} of a click that got no answer: the next click retries it
    async init() {
      const ref = savedOrders.get(this.drop.id);
      if (!ref) return;
      try {
        const reply = await send('GET', `/api/orders/${encodeURIComponent(ref)}`);
        if (reply.status === 200 && reply.data.status === 'reserved' && !this.answer) {
          this.order = reply.data;
          this.answer = { kind: 'reserved', text: 'Reserved.' };
        }
      } catch (e) { /* shown again on the next visit */ }
    },
    async buy(drop, ticketToken) {
      if (this.busy || this.settling) return;
      const clickedAt = performance.now();
      const quantity = Math.min(Math.max(1, this.qty || 1), Math.max(1, Math.min(drop.per_user_limit, drop.remaining)));
      const key = this.unanswered && this.unanswered.qty === quantity ? this.unanswered.key : 'click-' + randomHex(16);
      this.busy = true;
      this.answer = null;
      this.payError = '';
      try {
        const reply = await purchase(drop.id, quantity, key, ticketToken);
        this.unanswered = reply ? null : { key, qty: quantity };
        this.answer = purchaseAnswer(reply, drop);
        if (reply) window.dispatchEvent(new CustomEvent('dropsvc:answer', { detail: { dropId: drop.id } }));
        if (this.answer.kind === 'reserved') {
          this.order = reply.data;
          savedOrders.put(drop.id, reply.data.public_ref);
        }
      } finally {
        // the answer can beat a double-click's second click: hold the button until the window has passed
        const rest = DOUBLE_CLICK_MS - (performance.now() - clickedAt);
        this.settling = rest > 0;
        this.busy = false;
        if (rest > 0) setTimeout(() => { this.settling = false; }, rest);
      }
    },
    async pay(order) {
      this.paying = true;
      this.payError = await checkout(order.public_ref);
      if (this.payError) this.paying = false;
    },
  }));

  // The order page: where PayOS sends the shopper back. Polls until the order leaves "reserved".
  Alpine.data('orderView', () => ({
    ref: decodeURIComponent(window.location.pathname.slice('/orders/'.length).split('/')[0]),
    order: null,
    drop: null,
    notFound: false,
    error: '',
    actionError: '',
    busy: false,
    back: new URLSearchParams(window.location.search),
    // back from PayOS's Cancel: that payment link is closed for good (PayOS takes one link per order)
    get linkClosed() { return this.back.get('cancel') === 'true'; },
    init() {
      this.poll = poller(() => this.refresh());
    },
    destroy() { this.poll.stop(); },
    async refresh() {
      try {
        const reply = await send('GET', `/api/orders/${encodeURIComponent(this.ref)}`);
        if (reply.status === 404) { this.notFound = true; return false; }
        if (reply.status !== 200) throw new Error(`HTTP ${reply.status}`);
        this.order = reply.data;
        this.error = '';
        if (!this.drop) this.loadDrop(reply.data.drop_id);
        return reply.data.status === 'reserved';
      } catch (e) {
        this.error = 'Connection lost. Retrying…';
        return true;
      }
    },
    async loadDrop(dropId) {
      try {
        const reply = await send('GET', `/api/drops/${dropId}`);
        if (reply.status === 200) this.drop = reply.data;
      } catch (e) { /* the name is a nicety */ }
    },
    statusLabel(order) {
      return { paid: 'Paid', reserved: 'Reserved', expired: 'Expired', cancelled: 'Cancelled',
               refund_required: 'Refund due' }[order.status] || order.status;
    },
    statusText(order, now) {
      switch (order.status) {
        case 'paid': return 'Paid. Thank you: your order is confirmed.';
        case 'expired': return 'The hold expired before payment, so the stock went back to the drop.';
        case 'cancelled': return 'Cancelled. The stock went back to the drop.';
        case 'refund_required':
          return 'Your payment arrived after the hold expired and the drop had sold out meanwhile. It will be refunded.';
        case 'reserved':
          if (this.back.get('cancel') === 'false' && this.back.get('status') === 'PAID') {
            return 'PayOS says you paid. Confirming with the shop…';
          }
          if (order.expires_at <= now) return 'The hold is over; waiting for the shop to release it…';
          if (this.linkClosed) {
            return 'You cancelled the payment at PayOS, so this order can no longer be paid. Cancel it to release'
              + ` the item now; otherwise it goes back to the drop when the hold ends in ${duration(order.expires_at - now)}.`;
          }
          return `Reserved for you, waiting for payment. Pay within ${duration(order.expires_at - now)}.`;
        default: return order.status;
      }
    },
    async pay() {
      this.busy = true;
      this.actionError = await checkout(this.ref);
      if (this.actionError) this.busy = false;
    },
    async cancel() {
      this.busy = true;
      this.actionError = '';
      try {
        const reply = await send('POST', `/api/orders/${encodeURIComponent(this.ref)}/cancel`);
        if (reply.status === 200) this.order = reply.data;
        else this.actionError = errorMessage(reply) || 'The order could not be cancelled.';
        await this.refresh();
      } catch (e) {
        this.actionError = "We couldn't reach the shop. Try again.";
      } finally {
        this.busy = false;
      }
    },
  }));
});
