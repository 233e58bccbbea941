// Proof of work to join a line whose drop asks for it (SPEC 11, `challenge: pow`), with the ALTCHA widget.
// The widget (static/vendor/altcha.min.js, a module, from npm) is its build without inline workers or
// styles: its stylesheet and its SHA and PBKDF2 workers are files served from this origin, named in the
// page's <meta name="altcha-worker-..."> tags, so the Content-Security-Policy needs no blob: or inline
// style. "Join the line" fetches a fresh challenge for this buyer, hands it to the widget, which solves it
// in Web Workers and shows its progress, and the join carries the widget's payload. queue.js's `line`
// takes these parts (proofParts) and calls solve() from join(). Loaded after app.js, before queue.js.
'use strict';

const PROOF_WORDS = {
  checking: "Checking you're a person… This takes a few seconds: keep this page open.",
  done: 'Done: joining the line…',
};
const NO_WORKERS_WORDS = 'Joining this line needs a browser that runs Web Workers (a short check that you are a'
  + ' person runs in one): update this browser or use another one.';
const INSECURE_WORDS = 'Joining this line needs a secure connection: open this page at its https:// address.';
const WIDGET_WAIT_MS = 10000;  // the widget's module is deferred: it is there long before a click, or broken
const CHALLENGE_FAILED_WORDS = {
  expired: 'The check took too long and expired.',
  reused: 'That check was already used.',
};

// What this browser lacks to solve a challenge, in words ('' when nothing).
function proofUnsupported() {
  if (typeof window.Worker !== 'function') return NO_WORKERS_WORDS;
  if (!window.isSecureContext || !window.crypto || !window.crypto.subtle) return INSECURE_WORDS;
  return '';
}

// The words for a refused solution (422 challenge_failed; its message starts with the reason).
function challengeFailedText(reply) {
  const reason = errorMessage(reply).split(':')[0];
  const said = CHALLENGE_FAILED_WORDS[reason] || "The check didn't go through.";
  return `${said} Try again: a new check takes a few seconds.`;
}

const withTimeout = (promise, ms, words) => Promise.race([
  promise, new Promise((resolve, reject) => { setTimeout(() => reject(new Error(words)), ms); }),
]);

// Once: the widget's element defined, our workers registered for each algorithm, its words ours.
let altchaReady = null;
function altchaWidget() {
  altchaReady = altchaReady || withTimeout(customElements.whenDefined('altcha-widget'), WIDGET_WAIT_MS,
    'The check could not load: reload the page.').then(() => {
    const worker = (name) => {
      const url = document.querySelector(`meta[name="altcha-worker-${name}"]`).content;
      return () => new Worker(url);
    };
    const altcha = window.$altcha;
    for (const bits of [256, 384, 512]) {
      altcha.algorithms.set(`SHA-${bits}`, worker('sha'));
      altcha.algorithms.set(`PBKDF2/SHA-${bits}`, worker('pbkdf2'));
    }
    altcha.i18n.set('en', { ...altcha.i18n.get('en'), label: "I'm a person", verifying: 'Checking…', verified: 'Checked' });
  });
  altchaReady.catch(() => { altchaReady = null; });
  return altchaReady;
}

// The widget solves `challenge`: its payload, or an Error with words.
function widgetSolves(widget, challenge) {
  return new Promise((resolve, reject) => {
    const done = () => { widget.removeEventListener('verified', onVerified); widget.removeEventListener('statechange', onState); };
    const onVerified = (event) => { done(); resolve(event.detail.payload); };
    const onState = (event) => {
      if (event.detail.state !== 'error' && event.detail.state !== 'expired') return;
      done();
      reject(new Error("The check couldn't finish in this browser. Try again."));
    };
    widget.addEventListener('verified', onVerified);
    widget.addEventListener('statechange', onState);
    widget.configure({ challenge, hideLogo: true, hideFooter: true, humanInteractionSignature: false });
    widget.verify();
  });
}

// The `line` component's proof of work: its state, its words, and solve().
function proofParts() {
  return {
    proof: '',  // '' (not started) | 'checking' | 'done' | 'failed'
    powLine() { return this.drop.challenge === 'pow'; },
    proofBlocked() { return this.powLine() ? proofUnsupported() : ''; },
    proofText() { return this.proof === 'checking' || (this.proof === 'done' && this.lineBusy) ? PROOF_WORDS[this.proof] : ''; },
    joinLabel() { return this.proof === 'failed' ? 'Try again' : this.words.join; },
    // {altcha: payload} for the join's body, or {error: words}
    async solve() {
      this.proof = 'checking';
      try {
        const [reply] = await Promise.all([send('GET', `/api/drops/${this.drop.id}/challenge`), altchaWidget()]);
        if (reply.status !== 200) throw new Error(joinError(reply));
        const payload = await widgetSolves(this.$refs.widget, reply.data);
        this.proof = 'done';
        return { altcha: payload };
      } catch (e) {
        this.proof = 'failed';
        return { error: e instanceof TypeError || !e.message ? "We couldn't reach the shop. Try again." : e.message };
      }
    },
    // a refused join (a refused solution: 422 challenge_failed): the widget back to its start, the shopper
    // told why, and the button says Try again, which solves a new challenge
    refused(reply) {
      this.proof = 'failed';
      if (this.$refs.widget && this.$refs.widget.reset) this.$refs.widget.reset();
      return errorCode(reply) === 'challenge_failed' ? challengeFailedText(reply) : joinError(reply, this.words.errors);
    },
  };
}
