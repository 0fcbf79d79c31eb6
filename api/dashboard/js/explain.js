// mazenet dashboard: failures in plain words.
//
// Mutation failure reasons (DOMAIN §4.4, §6, §8), validation issues (heal,
// deploy) and API errors are turned into one sentence that names the LAN or
// decky concerned. Ids never reach the operator: UUIDs are cut out of
// anything shown, even text we do not recognise.

const UUID = /\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b/gi;
const q = (s) => `“${s}”`;

// stripIds removes UUIDs (and the "for" that introduces one) from text.
export function stripIds(text) {
  return String(text == null ? '' : text)
    .replace(/\s+(for|of|in)\s+[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b/gi, '')
    .replace(UUID, '…')
    .trim();
}

// codesOf returns the validation codes of a post-apply failure reason.
export function codesOf(reason) {
  const m = /post-apply validation failed[^:]*:\s*([A-Z_,\s]+)$/.exec(String(reason || ''));
  return m ? m[1].split(',').map((c) => c.trim()).filter(Boolean) : [];
}

// lanOf and deckyOf name the LAN / decky an op's payload is about.
function lanOf(op, p) {
  if (op === 'add_lan' || op === 'remove_lan' || op === 'update_lan') return p.name;
  return p.lan;
}
function deckyOf(op, p) { return op === 'add_decky' ? p.name : p.decky; }

// codeSentence explains one validation code in the context of an op.
function codeSentence(code, op, p) {
  p = p || {};
  const lan = lanOf(op, p), decky = deckyOf(op, p);
  const svcs = Array.isArray(p.services) ? p.services : [];
  switch (code) {
    case 'SUBNET_MALFORMED': {
      const sub = p.subnet || (p.patch && p.patch.subnet);
      return sub ? `${q(sub)} is not a valid IPv4 network${lan ? ` for LAN ${q(lan)}` : ''}: write it as a.b.c.d/n with n from 0 to 32 and the host bits zero, e.g. 10.1.2.0/24.`
        : `A LAN's subnet is not a valid IPv4 network.`;
    }
    case 'SUBNET_OVERLAP':
      return `The subnet ${p.subnet ? q(p.subnet) + ' ' : ''}of LAN ${q(lan || '?')} overlaps another LAN of this topology; pick a range no other LAN uses.`;
    case 'LAN_NAME_DUP':
      return `Two LANs would both be called ${q((p.patch && p.patch.name) || lan || '?')}.`;
    case 'DECKY_NAME_DUP':
      return `Two deckies would both be called ${q(decky || '?')}.`;
    case 'IP_UNKNOWN_LAN':
      if (op === 'update_lan' && p.patch && p.patch.name) {
        return `LAN ${q(p.name)} cannot be renamed to ${q(p.patch.name)} while deckies are on it: their addresses still refer to ${q(p.name)}. Only a LAN without deckies can be renamed.`;
      }
      return `A decky's address would refer to a LAN that does not exist${lan ? ` (${q(lan)})` : ''}.`;
    case 'IP_MALFORMED':
      return p.ip ? `${q(p.ip)} is not a valid IPv4 address${decky ? ` for decky ${q(decky)}` : ''}.` : `An address${decky ? ` of decky ${q(decky)}` : ''} is not a valid IPv4 address.`;
    case 'IP_OUT_OF_SUBNET':
      return `${p.ip ? q(p.ip) : 'The address'} is outside the subnet of LAN ${q(lan || '?')}${decky ? ` (decky ${q(decky)})` : ''}; pick an address inside it or leave the IP empty.`;
    case 'IP_COLLISION':
      return `${p.ip ? q(p.ip) : 'That address'} is already used by another decky on LAN ${q(lan || '?')}; leave the IP empty to get the next free one.`;
    case 'UNKNOWN_SERVICE':
      return `${svcs.length === 1 ? q(svcs[0]) : svcs.length ? 'One of ' + svcs.map(q).join(', ') : 'A service'} is not in the service catalog${decky ? ` (decky ${q(decky)})` : ''}.`;
    case 'SERVICE_CFG_UNDECLARED':
      return `Decky ${q(decky || '?')} still has settings (service_config) for a service it no longer runs; remove that service's settings in the same update.`;
    case 'DMZ_MISSING': return 'No LAN is marked as the DMZ.';
    case 'DMZ_MULTIPLE': return 'More than one LAN is marked as the DMZ.';
    case 'DMZ_ORPHAN': return 'Some LAN has no path to the DMZ through a bridging decky.';
    case 'DECKY_ORPHAN': return `Decky ${q(decky || '?')} is on no LAN.`;
    default: return '';
  }
}

// explainFailure turns a failed mutation's reason into a sentence naming
// the LAN or decky; the op and payload fill in what the reason leaves out.
export function explainFailure(op, payload, reason) {
  const p = payload || {};
  const raw = String(reason || '');
  const text = raw.replace(/^[A-Za-z]+Error:\s*/, '');
  let m;
  const codes = codesOf(raw);
  if (codes.length) return codes.map((c) => codeSentence(c, op, p) || `Validation failed (${c}).`).join(' ');
  if ((m = /^LAN '(.*)' already exists$/.exec(text))) return `A LAN named ${q(m[1])} already exists in this topology; choose another name.`;
  if ((m = /^LAN '(.*)' not found$/.exec(text))) return `There is no LAN named ${q(m[1])} (it may have been removed or renamed meanwhile).`;
  if ((m = /^LAN '(.*)' is the home LAN of decky '(.*)'; remove the decky first$/.exec(text))) {
    return `LAN ${q(m[1])} cannot be removed: it is the home LAN of decky ${q(m[2])}. Remove ${q(m[2])} (and any other decky living there) first.`;
  }
  if ((m = /^LAN '(.*)' has a malformed subnet '(.*)'$/.exec(text))) return `LAN ${q(m[1])} has a subnet that is not a valid network (${q(m[2])}), so no address can be given out in it.`;
  if ((m = /^decky '(.*)' already exists$/.exec(text))) return `A decky named ${q(m[1])} already exists in this topology; choose another name.`;
  if ((m = /^decky '(.*)' not found$/.exec(text))) return `There is no decky named ${q(m[1])} (it may have been removed meanwhile).`;
  if ((m = /^decky '(.*)' already on LAN '(.*)'$/.exec(text))) return `Decky ${q(m[1])} is already on LAN ${q(m[2])}.`;
  if (/^decky or LAN not found$/.test(text)) return `Decky ${q(p.decky || '?')} or LAN ${q(p.lan || '?')} does not exist.`;
  if (/^decky has no LAN memberships$/.test(text)) return `Decky ${q(p.decky || '?')} is not on any LAN.`;
  if ((m = /^cannot detach home LAN '(.*)'; use remove_decky$/.exec(text))) return `${q(m[1])} is the home LAN of decky ${q(p.decky || '?')} and cannot be detached; remove the decky instead.`;
  if ((m = /^decky not attached to LAN '(.*)'$/.exec(text))) return `Decky ${q(p.decky || '?')} is not attached to LAN ${q(m[1])}.`;
  if ((m = /^no free IPs left in (.*)$/.exec(text))) return `LAN ${q(lanOf(op, p) || '?')} has no free address left (${m[1]}).`;
  if ((m = /^no free \/24s left under (.*)$/.exec(text))) return `No free /24 network is left under ${m[1]}; give the LAN an explicit subnet.`;
  if ((m = /^cannot promote decky '(.*)' to gateway: home LAN '(.*)' is not a DMZ/.exec(text))) {
    return `Decky ${q(m[1])} cannot become a gateway (forwards L3): its home LAN ${q(m[2])} is not the DMZ. Add a new decky in the DMZ with forwards L3 instead.`;
  }
  if ((m = /^forwards_l3 flip on live decky '(.*)' requires force=true/.exec(text))) {
    return `Turning forwards L3 on or off for ${q(m[1])} recreates its base container (in-container state is lost); tick “force” to allow it.`;
  }
  if ((m = /^cannot change \[(.*)\] on a deployed LAN/.exec(text))) {
    const what = m[1].split(',').map((s) => s.trim().replace(/'/g, '')).map((k) => (k === 'is_dmz' ? 'the DMZ flag' : 'the subnet')).join(' and ');
    return `${what.charAt(0).toUpperCase() + what.slice(1)} of LAN ${q(p.name || '?')} cannot change while the topology is deployed; tear it down and redeploy.`;
  }
  if (/torn down before this mutation was applied/.test(text)) return 'The topology was torn down before this change was applied.';
  if (/^the mutation could not be applied$/.test(text) || /^InternalError/.test(raw)) return 'The change could not be applied because of an internal error; the server log has the details.';
  return stripIds(text) || 'The change failed.';
}

// explainStatusReason explains why a topology changed status.
export function explainStatusReason(state, reason) {
  if (!reason) return '';
  if (reason === 'healed') return 'Re-checked: valid and healthy again.';
  if (/^DeployError: some units are unhealthy/.test(reason)) return 'Deployed, but some units are unhealthy.';
  if (/^DeployError:/.test(reason)) return `Deploy failed: ${stripIds(reason.replace(/^DeployError:\s*/, ''))}`;
  if (/^TeardownError:/.test(reason)) return `Teardown failed: ${stripIds(reason.replace(/^TeardownError:\s*/, ''))}`;
  if (/^(MutationError|InternalError):/.test(reason)) return `A change failed: ${explainFailure('', {}, reason)}`;
  return stripIds(reason);
}

// explainIssue turns a validation issue {severity, code, message, target}
// (heal 409, deploy 422) into a sentence.
export function explainIssue(issue) {
  const t = (issue && issue.target) || {};
  const code = (issue && issue.code) || '';
  const pl = (list) => String(list || '').split(',').map((s) => q(s.trim())).join(' and ');
  switch (code) {
    case 'LAN_NAME_DUP': return `Two LANs are called ${q(t.lan)}.`;
    case 'DECKY_NAME_DUP': return `Two deckies are called ${q(t.decky)}.`;
    case 'IP_UNKNOWN_LAN': return `Decky ${q(t.decky)} has an address on LAN ${q(t.lan)}, which does not exist.`;
    case 'IP_MALFORMED': return `Decky ${q(t.decky)} has an address on LAN ${q(t.lan)} that is not valid (${q(t.ip || '?')}).`;
    case 'IP_OUT_OF_SUBNET': return `Decky ${q(t.decky)}'s address ${t.ip || ''} is outside the subnet of LAN ${q(t.lan)}.`;
    case 'IP_COLLISION': return `Deckies ${pl(t.deckies)} share the address ${t.ip || '?'} on LAN ${q(t.lan)}.`;
    case 'SUBNET_MALFORMED': return `LAN ${q(t.lan)} has a subnet that is not a valid IPv4 network.`;
    case 'SUBNET_OVERLAP': return `The subnets of LANs ${pl(t.lans)} overlap.`;
    case 'UNKNOWN_SERVICE': return `Decky ${q(t.decky)} runs ${q(t.service)}, which is not in the service catalog.`;
    case 'SERVICE_CFG_UNDECLARED': return `Decky ${q(t.decky)} has settings for ${q(t.service)}, a service it does not run.`;
    case 'DMZ_MISSING': return 'No LAN is marked as the DMZ.';
    case 'DMZ_MULTIPLE': return `More than one LAN is marked as the DMZ (${pl(t.lans)}).`;
    case 'DMZ_ORPHAN': return `LAN${String(t.lans || '').includes(',') ? 's' : ''} ${pl(t.lans)} ${String(t.lans || '').includes(',') ? 'have' : 'has'} no path to the DMZ through a bridging decky.`;
    case 'DECKY_ORPHAN': return `Decky ${q(t.decky)} is on no LAN.`;
    case 'GATEWAY_NOT_IN_DMZ': return `Gateway decky ${q(t.decky)} is not homed in the DMZ.`;
    case 'PORT_COLLISION': return `A gateway port is already in use on the host${t.decky ? ` (decky ${q(t.decky)})` : ''}.`;
    default: return stripIds((issue && issue.message) || code || 'Unknown problem.');
  }
}

// explainUnhealthy turns one unhealthy unit of a heal 409 (a string or an
// object naming a decky or LAN) into a sentence.
export function explainUnhealthy(u) {
  if (typeof u === 'string') return `${stripIds(u)} is not healthy.`;
  const o = u || {};
  const who = o.decky || o.decky_name || o.name || o.unit || o.lan || '';
  const why = o.reason || o.error || o.state || o.status || '';
  return `${who ? `${o.lan && !o.decky ? 'LAN' : 'Decky'} ${q(stripIds(who))}` : 'A unit'} is not healthy${why ? `: ${stripIds(why)}` : ''}.`;
}

// explainRefusal turns an API refusal of an enqueue (422 {detail, field},
// 409, …) into a sentence; codes of D2-extended checks are explained like
// the same failure at apply time.
export function explainRefusal(op, payload, status, detail) {
  const text = String(detail || '');
  const codes = (text.match(/\b(SUBNET_MALFORMED|IP_MALFORMED|UNKNOWN_SERVICE|SUBNET_OVERLAP|IP_OUT_OF_SUBNET)\b/g) || []);
  if (codes.length) return [...new Set(codes)].map((c) => codeSentence(c, op, payload)).join(' ');
  let m;
  if ((m = /^Version conflict: expected (\d+), current (\d+)/.exec(text))) {
    return `Someone else changed this topology meanwhile (version ${m[1]} → ${m[2]}); the view was refreshed, check it and queue again.`;
  }
  if ((m = /^Topology is '([a-z_]+)'; the mutation queue is only open/.exec(text))) {
    return `The topology is ${m[1].replace('_', ' ')}: its mutation queue only accepts changes while it is active or degraded.`;
  }
  if (/^Topology not found/.test(text)) return 'This topology no longer exists.';
  if ((m = /^(?:body\.)?payload\.([a-z_.]+): (.*)$/.exec(text))) {
    const what = m[2].replace(/^required string$/, 'is required');
    return `The field ${q(m[1].replace(/^patch\./, 'patch.'))} ${what}.`.replace(/\.\.$/, '.');
  }
  return stripIds(text);
}
