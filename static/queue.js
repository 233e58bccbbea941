// A queue drop's line on the shopper page (SPEC 11): join, wait, check in, the turn to buy, leave. A draw
// is the same line with other words: enter, "you're in the draw", then "you won" or the waitlist.
// Loaded after app.js (whose helpers it uses) and before Alpine, like it. The card's `line` component
// polls the public queue document (cacheable, the same for everyone) at its poll_after_ms, and views the
// shopper's own ticket (which checks it in) only when that can tell something new: once in the check-in
// window before the start, once after the close, when the document says the turn may have come, after
// a purchase's answer, and every TICKET_REFRESH_MS to refresh `ahead` and the estimate. A line that asks for
// proof of work solves a challenge first (proof.js, loaded before this file).
'use strict';

const CHECK_IN_LEAD_MS = 9 * 60 * 1000;  // the service checks in from 10 minutes before the start: a margin
const TICKET_REFRESH_MS = 30000;          // a waiting ticket's view, to refresh ahead and eta_s
const TURN_VIEW_MS = 2000;                // at most this often when the document says the turn may have come
const FAR_POLL_MS = 10000;                // the queue document while the start is more than a minute away
const WARN_AT_MS = [30000, 60000];        // the turn's warnings, most urgent first
const FINAL_TICKETS = ['used', 'lapsed', 'left', 'sold_out', 'ended', 'voided'];
const PAGE_TITLE = document.title;
const titled = (words) => `${words} — ${PAGE_TITLE}`;

const savedTickets = keptByDrop('dropsvc.tickets');  // the ticket id joined from this browser, by drop

const BUYER_REQUIRED_WORDS = 'This page needs its cookie to know you: allow cookies for this site, then reload.';

const NOT_ADMITTED_WORDS = {
  missing: 'This drop sells to its line: join the line and buy when your turn comes.',
  invalid: "Your ticket isn't valid in this browser: join the line from here.",
  other_buyer: 'This ticket belongs to another browser: join the line from here.',
  waiting: "It isn't your turn yet: stay in line, this page tells you when it is.",
  lapsed: 'Your turn has passed: the time to buy ran out and the unit went to the next in line.',
  used: 'You have already bought with this turn (maybe in another tab).',
  absent: 'Your turn came while you were away: keep this page open to go back in line.',
  left: 'You left the line, so this ticket can no longer buy.',
  sold_out: 'Sold out: the line has finished and every unit is sold.',
  ended: 'This drop has ended.',
  voided: 'The shop voided this ticket.',
};

function notAdmittedAnswer(ticketState) {
  return { kind: 'not_admitted', text: NOT_ADMITTED_WORDS[ticketState] || 'You cannot buy with this ticket now.' };
}

const JOIN_WORDS = {
  buyer_required: BUYER_REQUIRED_WORDS,
  queue_closed: 'The line is closed: the drop has ended.',
  no_queue: 'This drop has no line any more: reload the page.',
  drop_not_found: 'This drop is no longer available.',
};

function joinError(reply, words = JOIN_WORDS) {
  if (!reply) return "We couldn't reach the shop. Try again.";
  if (reply.status === 429) return 'Too many tries to join from your network. Wait a minute, then try again.';
  const code = errorCode(reply);
  return words[code] || JOIN_WORDS[code] || errorMessage(reply) || `Joining failed (HTTP ${reply.status}). Try again.`;
}

function waitText(seconds) {
  if (seconds === null || seconds === undefined) return '';
  if (seconds < 60) return 'under a minute';
  return `about ${Math.round(seconds / 60)} min`;
}

const plural = (n, one, many) => `${n} ${n === 1 ? one : many}`;

// h:mm left, rounded up to the minute (a draw's winners have an hour or so)
function hoursMinutes(ms) {
  const minutes = Math.max(0, Math.ceil(ms / 60000));
  return `${Math.floor(minutes / 60)}:${pad(minutes % 60)}`;
}

function spanWords(seconds) {
  return seconds % 3600 === 0 ? plural(seconds / 3600, 'hour', 'hours') : plural(Math.round(seconds / 60), 'minute', 'minutes');
}

// What each kind of line says; the page's structure is the same for both. `titles`: a hidden tab's title
// when the line comes to that phase.
const LINE_WORDS = {
  queue: {
    intro: () => 'This drop sells through a line. Join before the start and your place is drawn at random when it opens;'
      + ' after that, places go in the order people join.',
    join: 'Join the line',
    leave: 'Leave the line',
    leaveAsk: "Leave the line for good? You can't join it again.",
    stay: 'Stay in line',
    note: 'Your place is kept by this browser: clearing its cookies or changing device loses it.',
    inLine: (waiting) => `${waiting} in line, your place is drawn at the start.`,
    turn: "It's your turn:",
    turnLeft: duration,
    titles: { turn: "It's your turn!" },
    errors: JOIN_WORDS,
  },
  draw: {
    intro: (drop, now) => (now < drop.starts_at ? `Entries open at ${clockTime(drop.starts_at)}. ` : '')
      + `This drop is a draw: enter before ${clockTime(drop.entries_close_at)}, when the winners are drawn at random`
      + ` and each has ${spanWords(drop.admit_seconds)} to buy. Everyone else is on the waitlist, in the draw's order,`
      + ' for the units that come back.',
    join: 'Enter the draw',
    leave: 'Leave the draw',
    leaveAsk: "Leave the draw for good? You can't enter it again.",
    stay: 'Stay in the draw',
    note: 'Your entry is kept by this browser: clearing its cookies or changing device loses it.',
    inLine: (waiting, drop) => `You're in the draw: ${plural(waiting, 'entry', 'entries')} so far.`
      + ` The draw is at ${clockTime(drop.entries_close_at)}.`,
    turn: 'You won:',
    turnLeft: hoursMinutes,
    titles: { turn: 'You won!', waitlist: 'Not this time' },
    errors: {
      queue_closed: 'Entries are closed: the draw has been made.',
      entries_not_open: 'Entries are not open yet: come back when they open.',
    },
  },
};
const LINE_TITLES = new Set(Object.values(LINE_WORDS).flatMap((words) => Object.values(words.titles).map(titled)));

document.addEventListener('alpine:init', () => {
  // On every card; inert unless the drop's admission is `queue`.
  window.Alpine.data('line', () => ({
    ticket: null,      // the last view of the shopper's ticket
    viewedAt: 0,       // serverNow() of that view
    viewedKey: '',     // the queue document's admitted_through/remaining/state at that view
    checkedIn: false,  // a view inside the check-in window has been made
    doc: null,         // the last queue document
    lineBusy: false,   // joining or leaving
    lineError: '',
    leaving: false,    // asked to leave: the confirmation shows (a ticket that left cannot join again)
    // declared so that Alpine's merged scope sets them here, not on an outer component
    poll: null,
    onAnswer: null,
    onVisible: null,
    ...proofParts(),  // proof.js: a line that asks for proof of work
    get queued() { return this.drop.admission in LINE_WORDS; },
    get words() { return LINE_WORDS[this.drop.admission]; },
    // when the line closes: a queue's at its start, a draw's entries at entries_close_at (the draw)
    get closesAt() { return this.drop.admission === 'draw' ? this.drop.entries_close_at : this.drop.starts_at; },
    init() {
      const ticketId = this.queued ? savedTickets.get(this.drop.id) : null;
      if (ticketId) this.follow(ticketId);
      this.onAnswer = (event) => { if (event.detail && event.detail.dropId === this.drop.id && this.ticket) this.view(); };
      this.onVisible = () => { if (!document.hidden) this.restoreTitle(); };
      window.addEventListener('dropsvc:answer', this.onAnswer);
      document.addEventListener('visibilitychange', this.onVisible);
    },
    destroy() {
      if (this.poll) this.poll.stop();
      window.removeEventListener('dropsvc:answer', this.onAnswer);
      document.removeEventListener('visibilitychange', this.onVisible);
      this.restoreTitle();
    },

    // -- what the shopper sees ---------------------------------------------------------------------
    phase(now) {
      const ticket = this.ticket, docState = this.doc && this.doc.state;
      if (!ticket && this.drop.status === 'ended') return 'ended';
      if (!ticket) return this.drop.admission === 'draw' && now >= this.closesAt ? 'entries_closed' : 'join';
      if (FINAL_TICKETS.includes(ticket.state)) return ticket.state;
      if (docState === 'sold_out' || docState === 'ended') return docState;  // the line finished: say so at once
      if (ticket.state === 'admitted') return ticket.admitted_until > now ? 'turn' : 'lapsed';
      if (ticket.position === null) return 'drawing';
      return this.drop.admission === 'draw' ? 'waitlist' : 'waiting';  // a draw's waiting entries: its waitlist
    },
    inLine: (phase) => ['drawing', 'waiting', 'waitlist', 'turn'].includes(phase),
    canJoin(now) { return this.drop.admission !== 'draw' || now >= this.drop.starts_at; },
    ticketToken() { return this.queued && this.ticket ? this.ticket.token : null; },
    canOrder(drop, now) { return this.queued ? this.phase(now) === 'turn' : this.canBuy(drop, now); },
    orderLabel(drop, now) { return this.queued && this.phase(now) === 'turn' ? 'Buy' : this.buyLabel(drop, now); },
    drawingText() { return this.words.inLine(this.doc ? this.doc.waiting : 1, this.drop); },
    waitlistText() {
      return this.ticket && this.ticket.position ? `Not this time (you are number ${this.ahead() + 1} on the waitlist).` : '';
    },
    // waiting tickets ahead: the view's count, lowered since by what the public document shows admitted
    ahead() {
      const { ahead, position } = this.ticket;
      const through = this.doc ? this.doc.admitted_through : 0;
      return Math.max(0, Math.min(ahead === null ? position - 1 : ahead, position - 1 - through));
    },
    aheadText() {
      const ahead = this.ahead();
      return ahead === 0 ? 'You are next.' : `${plural(ahead, 'person', 'people')} ahead of you.`;
    },
    etaText(now) {
      const eta = this.ticket.eta_s;
      if (eta === null || (this.doc && this.doc.remaining <= 0)) return '';
      return 'Estimated wait: ' + waitText(Math.max(0, eta - Math.floor((now - this.viewedAt) / 1000))) + '.';
    },
    progress() {
      const through = this.doc ? this.doc.admitted_through : 0;
      return Math.min(100, Math.round((100 * through) / this.ticket.position));
    },
    turnLeft(now) { return this.words.turnLeft(this.ticket.admitted_until - now); },
    warning(now) {
      if (this.phase(now) !== 'turn') return '';
      const left = this.ticket.admitted_until - now;
      if (left <= WARN_AT_MS[0]) return 'Less than 30 seconds left: buy now or your turn passes to the next in line.';
      if (left <= WARN_AT_MS[1]) return 'Less than a minute left to buy.';
      return '';
    },
    endText: (phase) => ({ used: 'You bought with your turn.', left: 'You left the line.',
      entries_closed: 'Entries are closed: the draw has been made.' })[phase]
      || (FINAL_TICKETS.includes(phase) || phase === 'ended' ? NOT_ADMITTED_WORDS[phase] : ''),
    seed() { return this.doc ? this.doc.seed : null; },
    short: (hex) => (hex ? hex.slice(0, 16) + '…' : ''),

    // -- joining and leaving -------------------------------------------------------------------------
    async join() {
      await this.act(async () => {
        const body = this.powLine() ? await this.solve() : {};
        if (body.error) return body.error;
        const reply = await send('POST', `/api/drops/${this.drop.id}/tickets`, { body });
        if (reply.status !== 200 && reply.status !== 201) {
          return this.powLine() ? this.refused(reply) : joinError(reply, this.words.errors);
        }
        savedTickets.put(this.drop.id, reply.data.ticket_id);
        this.show(reply.data);
        this.follow(reply.data.ticket_id);
        return '';
      });
    },
    // Leaving is final (the line keeps one ticket per buyer), so the Leave button asks first; the
    // focus goes to the answer, and back to Leave when the shopper stays.
    askLeave() {
      this.leaving = true;
      this.$nextTick(() => this.$refs.leaveYes && this.$refs.leaveYes.focus());
    },
    stay() {
      this.leaving = false;
      this.$nextTick(() => this.$refs.leaveButton && this.$refs.leaveButton.focus());
    },
    async leave() {
      this.leaving = false;
      await this.act(async () => {
        const reply = await send('DELETE', `/api/drops/${this.drop.id}/tickets/${this.ticket.ticket_id}`);
        if (reply.status === 200) { this.show(reply.data); return ''; }
        if (errorCode(reply) === 'already_left' || errorCode(reply) === 'ticket_final') { await this.view(); return ''; }
        return errorMessage(reply) || `Leaving failed (HTTP ${reply.status}). Try again.`;
      });
    },
    async act(fn) {
      if (this.lineBusy) return;
      this.lineBusy = true;
      this.lineError = '';
      try {
        this.lineError = await fn();
      } catch (e) {
        this.lineError = "We couldn't reach the shop. Try again.";
      } finally {
        this.lineBusy = false;
      }
    },

    // -- following the line ----------------------------------------------------------------------------
    // The ticket is the buyer cookie's: a reload finds it by its saved id (a 404: not this browser's).
    follow(ticketId) {
      if (this.poll) return;
      const fetchDoc = revalidated(`/api/drops/${this.drop.id}/queue`);
      this.poll = poller(async () => {
        try {
          if (!this.ticket || this.ticket.ticket_id !== String(ticketId)) await this.view(ticketId);
          if (!this.ticket) return false;
          this.doc = (await fetchDoc()).body;
          if (this.viewDue()) await this.view();
        } catch (e) {
          return POLL_MS;  // no answer: try again soon
        }
        this.flagTurn();
        return this.ticket && FINAL_TICKETS.includes(this.ticket.state) ? false : this.nextPollMs();
      });
    },
    async view(ticketId = this.ticket.ticket_id) {
      const at = serverNow();
      const reply = await send('GET', `/api/drops/${this.drop.id}/tickets/${ticketId}`);
      if (reply.status === 404) { savedTickets.put(this.drop.id, null); this.ticket = null; return; }
      if (reply.status !== 200) throw new Error(`HTTP ${reply.status}`);
      this.show(reply.data, at);
      // a view checks in (not a join); a draw's entry is checked in by being made
      if (this.drop.admission === 'draw' || at >= this.closesAt - CHECK_IN_LEAD_MS) this.checkedIn = true;
    },
    show(ticket, at = serverNow()) {
      this.ticket = ticket;
      this.viewedAt = at;
      this.viewedKey = this.docKey();
    },
    docKey() { return this.doc ? `${this.doc.admitted_through}/${this.doc.remaining}/${this.doc.state}` : ''; },
    // whether the ticket's view can tell something the public document does not
    viewDue() {
      const now = serverNow(), ticket = this.ticket, doc = this.doc;
      if (FINAL_TICKETS.includes(ticket.state)) return false;
      if (!this.checkedIn) return now >= this.closesAt - CHECK_IN_LEAD_MS;
      if (ticket.position === null) return doc.state !== 'entries_open';  // closed: the place is drawn
      if (doc.state === 'sold_out' || doc.state === 'ended') return this.docKey() !== this.viewedKey;
      const soon = now - this.viewedAt >= TURN_VIEW_MS, moved = this.docKey() !== this.viewedKey;
      // an admitted ticket: its window ran out, or nothing remains (the admitted wait again at their places)
      if (ticket.state === 'admitted') return soon && (now >= ticket.admitted_until || (doc.remaining <= 0 && moved));
      if (doc.admitted_through >= ticket.position && moved) return soon;  // the turn may have come
      return now - this.viewedAt >= TICKET_REFRESH_MS;
    },
    nextPollMs() {
      const wait = this.doc ? this.doc.poll_after_ms : POLL_MS;
      const untilStart = this.closesAt - serverNow();
      // far from the start nothing moves: poll slowly, but wake for the check-in window and the start
      if (untilStart > 60000) return Math.min(Math.max(wait, FAR_POLL_MS), untilStart - 60000 + 100);
      return wait;
    },

    // -- a turn (a draw's outcome) that comes in a hidden tab shows in its title -----------------------------
    flagTurn() {
      const words = this.words.titles[this.phase(serverNow())];
      if (!words) this.restoreTitle();
      else if (document.hidden) document.title = titled(words);
    },
    restoreTitle() { if (LINE_TITLES.has(document.title)) document.title = PAGE_TITLE; },
  }));
});
