//! The static inbound decision per profile, and the edits that open a port.

use serde::Serialize;

use crate::policy::{HiveKind, Policy, Profile, ProfileValues, RuleLocation, RuleRef, Store};
use crate::rule::{Action, Condition, Direction, PortSpec, Program, Rule};

/// The transport protocol of the traffic asked about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    Tcp,
    Udp,
}

impl Protocol {
    /// The IP protocol number (`Protocol=` of a rule).
    pub fn number(self) -> u8 {
        match self {
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
        }
    }
}

/// Where an effective setting came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "from", rename_all = "snake_case")]
pub enum Source {
    GroupPolicy {
        key: String,
    },
    Local {
        key: String,
    },
    /// Neither store has the value: Windows' default.
    Default,
}

/// One effective setting and where it was read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Setting {
    pub value: u32,
    pub source: Source,
}

/// The settings that decide a profile, Group Policy over local over default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EffectiveSettings {
    /// 0: the profile's firewall is off and everything is allowed. Default 1.
    pub enable_firewall: Setting,
    /// 1: every inbound packet is blocked, allow rules included ("shields up"). Default 0.
    pub do_not_allow_exceptions: Setting,
    /// 1 (block) or 0 (allow) for traffic no rule matches. Default 1.
    pub default_inbound_action: Setting,
    /// Group Policy only; 0: the local rules are ignored. Default 1.
    pub allow_local_policy_merge: Setting,
}

/// A rule that allows or blocks only some of the traffic, and the fields that narrow it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConditionalRule {
    pub rule: RuleRef,
    pub conditions: Vec<Condition>,
}

/// What lets the traffic in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Allower {
    Rule(RuleRef),
    /// `DefaultInboundAction` 0: traffic no block rule matches is allowed.
    DefaultInboundAction {
        source: Source,
    },
}

/// One reason the traffic is blocked. A blocked profile lists every reason, so that a fix
/// removes all of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Blocker {
    /// An active block rule matching the traffic (block wins over allow).
    BlockRule(RuleRef),
    /// `DoNotAllowExceptions` 1 on the profile.
    DoNotAllowExceptions { profile: Profile, source: Source },
    /// No active allow rule matches and the default inbound action is block.
    NoAllowRule,
}

/// The decision for one profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    /// `EnableFirewall` 0: the profile filters nothing.
    FirewallOff,
    Allowed {
        by: Vec<Allower>,
    },
    /// Allowed for the sources, interfaces or peers some rules name, and not for others:
    /// allow rules with conditions, or a full allow narrowed by block rules with conditions.
    AllowedFromSomeSources {
        allowed_by: Vec<ConditionalRule>,
        /// What allows without conditions (then narrowed by `partly_blocked_by`).
        allowed_fully_by: Vec<Allower>,
        partly_blocked_by: Vec<ConditionalRule>,
    },
    Blocked {
        by: Vec<Blocker>,
    },
}

/// The decision for one profile and what it was made from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProfileDecision {
    pub profile: Profile,
    pub decision: Decision,
    pub settings: EffectiveSettings,
    /// Whether local rules take part (Group Policy's `AllowLocalPolicyMerge` is not 0).
    pub local_rules_apply: bool,
    /// Whether Group Policy was read (a SOFTWARE hive was given); when not, the decision is the
    /// local configuration's only.
    pub group_policy_known: bool,
    /// Active rules that match protocol, port and profile but are for another program (so they
    /// do not see RDP traffic); listed so that a surprising answer can be checked.
    pub other_program_rules: Vec<RuleRef>,
    /// Rules of the stores in effect that could not be parsed: the decision is made without them.
    pub unparsed_rules: Vec<RuleLocation>,
}

/// The change an [`Edit`] makes to one value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "op", content = "data", rename_all = "snake_case")]
pub enum Change {
    /// Write this REG_SZ (the key is created if it does not exist).
    SetSz(String),
    Delete,
}

/// Why an edit is proposed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EditReason {
    /// An inactive built-in Remote Desktop rule, activated (`Active=TRUE`, nothing else changed).
    ActivateRule { profiles: Vec<Profile> },
    /// A new allow rule for a port no built-in rule covers.
    AddRule { profiles: Vec<Profile> },
    /// A local block rule matching the traffic, deactivated (`Active=FALSE`).
    DeactivateBlockRule { profiles: Vec<Profile> },
    /// The local `DoNotAllowExceptions` of a profile, deleted (its default is 0).
    DeleteDoNotAllowExceptions { profile: Profile },
}

/// One registry change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Edit {
    pub hive: HiveKind,
    /// Key path from the hive root.
    pub key: String,
    pub value: String,
    pub change: Change,
    pub reason: EditReason,
}

/// A cause that an offline edit cannot remove safely: it comes from Group Policy, which the
/// domain writes back at the next policy refresh.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum NotFixable {
    PolicyBlockRule {
        profile: Profile,
        rule: RuleRef,
    },
    PolicyDoNotAllowExceptions {
        profile: Profile,
        key: String,
    },
    /// No Group Policy rule allows the port and `AllowLocalPolicyMerge` 0 hides local rules.
    PolicyIgnoresLocalRules {
        profile: Profile,
        key: String,
    },
}

/// The edits that let the traffic in on every profile, or the reasons it cannot be done offline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FixPlan {
    /// Empty whenever `not_fixable` is not: a partial fix would leave a profile blocked by
    /// policy while looking like a repair.
    pub edits: Vec<Edit>,
    pub not_fixable: Vec<NotFixable>,
}

/// The rule group of the built-in Remote Desktop rules ("Remote Desktop").
pub const RDP_GROUP: &str = "@FirewallAPI.dll,-28752";
/// The built-in rule the fix prefers: Remote Desktop - User Mode (TCP-In).
pub const RDP_USERMODE_TCP: &str = "RemoteDesktop-UserMode-In-TCP";
/// The `Name=` of the rule added for a port no built-in rule covers (as Azure's SetRDPPort does).
pub const CUSTOM_RULE_NAME: &str = "Remote Desktop - Custom Port";

/// The id of the rule added for `port`.
pub fn custom_rule_id(protocol: Protocol, port: u16) -> String {
    let p = match protocol {
        Protocol::Tcp => "TCP",
        Protocol::Udp => "UDP",
    };
    format!("RemoteDesktop-Custom-In-{p}-{port}")
}

/// The rule string added for `port`: TCP, every profile, any program (the listener moves
/// between the kernel and svchost across Windows versions), schema v2.10 that every Windows
/// since 7 reads.
pub fn custom_rule_text(protocol: Protocol, port: u16) -> String {
    let number = protocol.number();
    format!(
        "v2.10|Action=Allow|Active=TRUE|Dir=In|Protocol={number}|LPort={port}|Name={CUSTOM_RULE_NAME}|"
    )
}

fn setting(
    gp: Option<&ProfileValues>,
    local: Option<&ProfileValues>,
    get: impl Fn(&ProfileValues) -> Option<u32>,
    default: u32,
) -> Setting {
    for (values, gp_side) in [(gp, true), (local, false)] {
        if let Some(v) = values {
            if let (Some(value), Some(key)) = (get(v), &v.key) {
                let key = key.clone();
                let source = if gp_side {
                    Source::GroupPolicy { key }
                } else {
                    Source::Local { key }
                };
                return Setting { value, source };
            }
        }
    }
    Setting {
        value: default,
        source: Source::Default,
    }
}

fn rule_ref(location: &RuleLocation, rule: &Rule) -> RuleRef {
    RuleRef {
        location: location.clone(),
        name: rule.name.clone(),
    }
}

impl Policy {
    /// The settings in effect for `profile`.
    pub fn effective(&self, profile: Profile) -> EffectiveSettings {
        let i = Profile::ALL.iter().position(|&p| p == profile).unwrap_or(0);
        let gp = self.group_policy.as_ref().map(|g| &g[i]);
        let local = Some(&self.local[i]);
        EffectiveSettings {
            enable_firewall: setting(gp, local, |v| v.enable_firewall, 1),
            do_not_allow_exceptions: setting(gp, local, |v| v.do_not_allow_exceptions, 0),
            default_inbound_action: setting(gp, local, |v| v.default_inbound_action, 1),
            // The local store has no such setting: only Group Policy can turn merging off.
            allow_local_policy_merge: setting(gp, None, |v| v.allow_local_policy_merge, 1),
        }
    }

    /// Inbound `protocol` traffic to local `port` of the Remote Desktop listener, on each
    /// profile (Domain, Private, Public).
    pub fn inbound(&self, protocol: Protocol, port: u16) -> [ProfileDecision; 3] {
        Profile::ALL.map(|p| self.decide(p, protocol, port))
    }

    fn decide(&self, profile: Profile, protocol: Protocol, port: u16) -> ProfileDecision {
        let settings = self.effective(profile);
        let local_rules_apply = settings.allow_local_policy_merge.value != 0;
        let mut unparsed_rules = self.unparsed(Store::GroupPolicy);
        if local_rules_apply {
            unparsed_rules.extend(self.unparsed(Store::Local));
        }
        let mut other_program_rules = Vec::new();
        let (mut full_allow, mut cond_allow, mut full_block, mut cond_block) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for stored in &self.rules {
            let rule = &stored.rule;
            if stored.location.store == Store::Local && !local_rules_apply {
                continue;
            }
            if !rule.active
                || rule.direction != Direction::In
                || !rule.applies_to(profile)
                || !rule.matches_port(protocol.number(), port)
            {
                continue;
            }
            let r = rule_ref(&stored.location, rule);
            if rule.program(self.listener) == Program::Other {
                other_program_rules.push(r);
                continue;
            }
            let mut conditions = rule.conditions.clone();
            if rule.action == Action::ByPass {
                // Authenticated bypass only lets IPsec-authenticated peers through.
                conditions.push(Condition {
                    kind: crate::rule::ConditionKind::Authentication,
                    field: "Action".into(),
                    value: "ByPass".into(),
                });
            }
            let blocks = rule.action == Action::Block;
            match (blocks, conditions.is_empty()) {
                (false, true) => full_allow.push(r),
                (false, false) => cond_allow.push(ConditionalRule {
                    rule: r,
                    conditions,
                }),
                (true, true) => full_block.push(r),
                (true, false) => cond_block.push(ConditionalRule {
                    rule: r,
                    conditions,
                }),
            }
        }
        let decision = if settings.enable_firewall.value == 0 {
            Decision::FirewallOff
        } else {
            let shielded = settings.do_not_allow_exceptions.value == 1;
            let default_allow = settings.default_inbound_action.value == 0;
            let mut blockers = Vec::new();
            if shielded {
                blockers.push(Blocker::DoNotAllowExceptions {
                    profile,
                    source: settings.do_not_allow_exceptions.source.clone(),
                });
            }
            blockers.extend(full_block.into_iter().map(Blocker::BlockRule));
            let any_allow = !full_allow.is_empty() || !cond_allow.is_empty() || default_allow;
            if !any_allow {
                blockers.push(Blocker::NoAllowRule);
            }
            if !blockers.is_empty() {
                Decision::Blocked { by: blockers }
            } else {
                let mut full: Vec<Allower> = full_allow.into_iter().map(Allower::Rule).collect();
                if default_allow {
                    full.push(Allower::DefaultInboundAction {
                        source: settings.default_inbound_action.source.clone(),
                    });
                }
                if cond_block.is_empty() && !full.is_empty() {
                    Decision::Allowed { by: full }
                } else {
                    Decision::AllowedFromSomeSources {
                        allowed_by: cond_allow,
                        allowed_fully_by: full,
                        partly_blocked_by: cond_block,
                    }
                }
            }
        };
        ProfileDecision {
            profile,
            decision,
            settings,
            local_rules_apply,
            group_policy_known: self.group_policy.is_some(),
            other_program_rules,
            unparsed_rules,
        }
    }

    /// The edits that make [`Policy::inbound`] answer Allowed on every blocked profile, or why
    /// that cannot be done offline. Profiles already allowed (even from some sources only) or
    /// with the firewall off are left alone.
    pub fn fix_inbound(&self, protocol: Protocol, port: u16) -> FixPlan {
        let decisions = self.inbound(protocol, port);
        let mut not_fixable = Vec::new();
        let mut edits: Vec<Edit> = Vec::new();
        let mut need_allow: Vec<Profile> = Vec::new();
        for d in &decisions {
            let Decision::Blocked { by } = &d.decision else {
                continue;
            };
            for blocker in by {
                match blocker {
                    Blocker::DoNotAllowExceptions { profile, source } => match source {
                        Source::GroupPolicy { key } => {
                            not_fixable.push(NotFixable::PolicyDoNotAllowExceptions {
                                profile: *profile,
                                key: key.clone(),
                            })
                        }
                        Source::Local { key } => edits.push(Edit {
                            hive: HiveKind::System,
                            key: key.clone(),
                            value: "DoNotAllowExceptions".into(),
                            change: Change::Delete,
                            reason: EditReason::DeleteDoNotAllowExceptions { profile: *profile },
                        }),
                        // A default of 1 cannot happen (the default is 0).
                        Source::Default => {}
                    },
                    Blocker::BlockRule(r) => {
                        if r.location.store == Store::GroupPolicy {
                            not_fixable.push(NotFixable::PolicyBlockRule {
                                profile: d.profile,
                                rule: r.clone(),
                            });
                            continue;
                        }
                        if let Some(e) = edits.iter_mut().find(|e| {
                            e.key == r.location.key
                                && e.value == r.location.value
                                && matches!(e.reason, EditReason::DeactivateBlockRule { .. })
                        }) {
                            if let EditReason::DeactivateBlockRule { profiles } = &mut e.reason {
                                profiles.push(d.profile);
                            }
                            continue;
                        }
                        if let Some(stored) = self.rules.iter().find(|s| s.location == r.location) {
                            edits.push(Edit {
                                hive: HiveKind::System,
                                key: r.location.key.clone(),
                                value: r.location.value.clone(),
                                change: Change::SetSz(stored.rule.with_field("Active", "FALSE")),
                                reason: EditReason::DeactivateBlockRule {
                                    profiles: vec![d.profile],
                                },
                            });
                        }
                    }
                    Blocker::NoAllowRule => {
                        if d.local_rules_apply {
                            need_allow.push(d.profile);
                        } else {
                            let key = match &d.settings.allow_local_policy_merge.source {
                                Source::GroupPolicy { key } => key.clone(),
                                _ => String::new(),
                            };
                            not_fixable.push(NotFixable::PolicyIgnoresLocalRules {
                                profile: d.profile,
                                key,
                            });
                        }
                    }
                }
            }
        }
        if !not_fixable.is_empty() {
            return FixPlan {
                edits: Vec::new(),
                not_fixable,
            };
        }
        edits.extend(self.allow_edits(protocol, port, &need_allow));
        FixPlan { edits, not_fixable }
    }

    /// Activations of built-in Remote Desktop rules covering `profiles`, or one new rule.
    fn allow_edits(&self, protocol: Protocol, port: u16, profiles: &[Profile]) -> Vec<Edit> {
        if profiles.is_empty() {
            return Vec::new();
        }
        // A candidate would allow the traffic by itself once active: an inbound allow rule of
        // the Remote Desktop group, for the listener, without conditions, whose ports cover
        // the port (a rule without ports is not a Remote Desktop rule worth trusting).
        let mut candidates: Vec<_> = self
            .rules
            .iter()
            .filter(|s| {
                let r = &s.rule;
                s.location.store == Store::Local
                    && !r.active
                    && r.action == Action::Allow
                    && r.direction == Direction::In
                    && r.group
                        .as_deref()
                        .is_some_and(|g| g.eq_ignore_ascii_case(RDP_GROUP))
                    && r.program(self.listener) != Program::Other
                    && r.conditions.is_empty()
                    && !r.local_ports.is_empty()
                    && r.local_ports
                        .iter()
                        .all(|p| !matches!(p, PortSpec::Keyword(_)))
                    && r.matches_port(protocol.number(), port)
            })
            .collect();
        candidates.sort_by_key(|s| {
            (
                !s.location.value.eq_ignore_ascii_case(RDP_USERMODE_TCP),
                s.location.value.clone(),
            )
        });
        let mut left: Vec<Profile> = profiles.to_vec();
        let mut edits = Vec::new();
        for s in candidates {
            let covered: Vec<Profile> = left
                .iter()
                .copied()
                .filter(|&p| s.rule.applies_to(p))
                .collect();
            if covered.is_empty() {
                continue;
            }
            left.retain(|p| !covered.contains(p));
            edits.push(Edit {
                hive: HiveKind::System,
                key: s.location.key.clone(),
                value: s.location.value.clone(),
                change: Change::SetSz(s.rule.with_field("Active", "TRUE")),
                reason: EditReason::ActivateRule { profiles: covered },
            });
            if left.is_empty() {
                break;
            }
        }
        if !left.is_empty() {
            edits.push(Edit {
                hive: HiveKind::System,
                key: self.local_rules_key.clone(),
                value: custom_rule_id(protocol, port),
                change: Change::SetSz(custom_rule_text(protocol, port)),
                reason: EditReason::AddRule { profiles: left },
            });
        }
        edits
    }
}
