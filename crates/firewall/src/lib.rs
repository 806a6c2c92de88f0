//! Windows Defender Firewall, offline: is inbound traffic to the Remote Desktop port allowed on
//! each profile, what blocks it, and which registry edits let it in.
//!
//! # Getting started
//! ```no_run
//! use firewall::{Policy, Protocol};
//! let system = regf::Hive::open(std::fs::read("SYSTEM").unwrap()).unwrap();
//! let software = regf::Hive::open(std::fs::read("SOFTWARE").unwrap()).unwrap();
//! let policy = Policy::read(&system, "ControlSet001", Some(&software)).unwrap();
//! for d in policy.inbound(Protocol::Tcp, 3389) {
//!     println!("{:?}: {:?}", d.profile, d.decision);
//! }
//! let plan = policy.fix_inbound(Protocol::Tcp, 3389);
//! println!("{} edits, {} causes only the domain can remove", plan.edits.len(), plan.not_fixable.len());
//! ```
//! - [`Rule::parse`] reads one rule string ([MS-GPFAS] 2.2.2.19) and keeps its text, so that
//!   [`Rule::with_field`] changes one field and leaves every other byte as it was.
//! - [`Policy::read`] reads the local store of a control set
//!   (`Services\SharedAccess\Parameters\FirewallPolicy`: `DomainProfile`, `StandardProfile`
//!   (= Private), `PublicProfile`, `FirewallRules`) and, from a SOFTWARE hive, Group Policy
//!   (`Policies\Microsoft\WindowsFirewall`: `DomainProfile`, `PrivateProfile`, `PublicProfile`,
//!   `StandardProfile` for both when neither of those two exists, `FirewallRules`). Rules that do
//!   not parse are [`Problem`]s, never dropped silently.
//! - [`Policy::inbound`] gives a [`ProfileDecision`] per profile; [`Policy::fix_inbound`] the
//!   [`Edit`]s (a [`FixPlan`]).
//!
//! # The precedence model
//! For each profile, in this order:
//! 1. Settings: a Group Policy value wins over the local value, which wins over the default
//!    (`EnableFirewall` 1, `DoNotAllowExceptions` 0, `DefaultInboundAction` 1 = block,
//!    `AllowLocalPolicyMerge` 1). A value that is not a REG_DWORD is reported and skipped.
//! 2. `EnableFirewall` 0: [`Decision::FirewallOff`], everything is allowed.
//! 3. Rules in effect: every Group Policy rule, and the local rules unless Group Policy sets
//!    `AllowLocalPolicyMerge` 0. A rule matches when it is active, inbound, for the profile (no
//!    `Profile=` means all), for the protocol (none means any) and for the port (no `LPort`
//!    means any; port keywords such as `RPC` never match a listener's fixed port), and its
//!    program is the Remote Desktop listener or any program (`App`/`Svc` naming another
//!    program, or an app container, means the rule does not see RDP traffic).
//! 4. `DoNotAllowExceptions` 1 blocks everything, allow rules included. An active matching
//!    block rule without conditions blocks, whatever allows (block wins over allow).
//! 5. Otherwise an allow rule without conditions (or `DefaultInboundAction` 0) allows; allow
//!    rules with conditions (remote or local addresses, interfaces, remote ports, IPsec
//!    authentication, trust tuples, platforms), or block rules with conditions next to a full
//!    allow, give [`Decision::AllowedFromSomeSources`]: a distinct answer, not a block.
//! 6. Nothing allows: blocked, [`Blocker::NoAllowRule`].
//!
//! A blocked profile lists every cause ([`Blocker`]), so that a fix removes them all:
//! a local `DoNotAllowExceptions` is deleted, a local block rule gets `Active=FALSE`, and a
//! missing allow is met by activating the built-in rules of the "Remote Desktop" group
//! (`@FirewallAPI.dll,-28752`; `RemoteDesktop-UserMode-In-TCP` first) whose ports cover the
//! port, else by adding `RemoteDesktop-Custom-In-TCP-<port>` ("Remote Desktop - Custom Port").
//! A cause that comes from Group Policy is not edited: the domain would write it back at the
//! next refresh; the plan then holds no edit and says why ([`NotFixable`]).
//!
//! # What a static evaluation cannot know
//! - **Which profile the network adapter is in.** That is decided at run time by Network
//!   Location Awareness. An Azure VM's adapter is normally Public, or Domain when the VM is
//!   joined to a domain and reaches a domain controller; Private only when someone chose it.
//!   The answer is therefore given for all three profiles.
//! - Authenticated bypass (`Action=ByPass`, `Security=`, `RMauth=`, ...): such rules are treated
//!   as allowing some sources only; how IPsec negotiation, bypass over block rules or
//!   `DisableStealthModeIPsecSecuredPacketExemption` play out is not modelled.
//! - The program actually listening is inferred ([`Policy::listener_of`]): `svchost.exe` with
//!   `TermService` on Windows 8 and later, `System` (the kernel listener) on Windows 7, told
//!   apart by the built-in rules of the "Remote Desktop" group. Rules for the other one are
//!   listed as [`ProfileDecision::other_program_rules`] (Windows 10's Wi-Fi Direct and UPnP
//!   rules allow any TCP port for `App=System`: they do not let RDP in).
//! - Whether the firewall service runs: with MpsSvc or BFE stopped, the boot-time filters block
//!   inbound traffic whatever the rules say (the services crate answers that).
//! - Rules outside `FirewallRules`: service hardening (`RestrictedServices`, none of which
//!   names TermService in the real hives), app-isolation rules, MDM rules, IPsec connection
//!   security rules, Windows XP-style policy (`GloballyOpenPorts`, `Services\RemoteDesktop`),
//!   and third-party firewalls.
//! - Rules that do not parse are left out; each decision lists them ([`ProfileDecision`]).
//!
//! Sources: [MS-GPFAS] 2.2.2 (rule grammar), 2.2.3 (per-profile settings, StandardProfile
//! fallback); the real hives in `testdata/hives`.
#![forbid(unsafe_code)]

mod error;
mod eval;
mod policy;
pub mod rule;

pub use error::{Error, ParseError, ParseErrorKind, Result};
pub use eval::{
    custom_rule_id, custom_rule_text, Allower, Blocker, Change, ConditionalRule, Decision, Edit,
    EditReason, EffectiveSettings, FixPlan, NotFixable, ProfileDecision, Protocol, Setting, Source,
    CUSTOM_RULE_NAME, RDP_GROUP, RDP_USERMODE_TCP,
};
pub use policy::{
    HiveKind, Policy, Problem, Profile, ProfileValues, RuleLocation, RuleRef, Store, StoredRule,
    POLICY_KEY,
};
pub use rule::{Condition, ConditionKind, Listener, Rule};
