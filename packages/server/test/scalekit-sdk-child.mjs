// Runs the unmodified SDK in its own process, so NODE_EXTRA_CA_CERTS (read at start) can make it trust
// the test's self-signed certificate: send, read the code from the dev mailbox, verify. Prints JSON.
import { Scalekit } from '@scalekit-sdk/node';

const { HALLPASS_URL, CLIENT_ID, CLIENT_SECRET, EMAIL } = process.env;
const scalekit = new Scalekit(HALLPASS_URL, CLIENT_ID, CLIENT_SECRET);
const sent = await scalekit.passwordless.sendPasswordlessEmail(EMAIL, { state: 'over-tls' });
let mail;
for (let i = 0; i < 200 && !mail; i++) {
  const res = await fetch(`${HALLPASS_URL}/dev/mailbox/messages?to=${encodeURIComponent(EMAIL)}`);
  mail = (await res.json()).messages[0];
  if (!mail) await new Promise((r) => setTimeout(r, 50));
}
const verified = await scalekit.passwordless.verifyPasswordlessEmail({ code: mail.code }, sent.authRequestId);
console.log(JSON.stringify({ authRequestId: sent.authRequestId, email: verified.email, state: verified.state }));
