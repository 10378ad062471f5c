//! The compliance presets, embedded from `presets/*.toml`.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A compliance preset: a `heliosdb.toml` fragment whose settings sit under the file's own.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Preset {
    /// No preset: only defaults and the file.
    #[default]
    #[serde(rename = "none")]
    None,
    /// SOC 2 (Trust Services Criteria CC6, CC7).
    #[serde(rename = "soc2")]
    Soc2,
    /// HIPAA Security Rule (45 CFR §164.312(b), §164.316).
    #[serde(rename = "hipaa")]
    Hipaa,
    /// GDPR (Art. 5, 17, 30, 32).
    #[serde(rename = "gdpr")]
    Gdpr,
    /// PCI DSS v4.0 requirement 10.
    #[serde(rename = "pci-dss")]
    PciDss,
    /// FDA 21 CFR Part 11 (§11.10(e)).
    #[serde(rename = "fda-part11")]
    FdaPart11,
}

impl Preset {
    /// Every preset but `none`, in the order `heliosdb presets` lists them.
    pub const ALL: [Preset; 5] = [
        Preset::Soc2,
        Preset::Hipaa,
        Preset::Gdpr,
        Preset::PciDss,
        Preset::FdaPart11,
    ];

    /// The name used in `audit.preset`.
    pub fn name(self) -> &'static str {
        match self {
            Preset::None => "none",
            Preset::Soc2 => "soc2",
            Preset::Hipaa => "hipaa",
            Preset::Gdpr => "gdpr",
            Preset::PciDss => "pci-dss",
            Preset::FdaPart11 => "fda-part11",
        }
    }

    /// The preset named `name`, if any.
    pub fn from_name(name: &str) -> Option<Preset> {
        std::iter::once(Preset::None)
            .chain(Preset::ALL)
            .find(|p| p.name() == name)
    }

    /// One line: what the preset is for.
    pub fn purpose(self) -> &'static str {
        match self {
            Preset::None => "no preset: defaults and your file only",
            Preset::Soc2 => {
                "SOC 2: changes, logins and admin actions kept 90 days (CC7.2 monitoring)"
            }
            Preset::Hipaa => {
                "HIPAA: every access to ePHI including reads, kept 2555 days (§164.312(b))"
            }
            Preset::Gdpr => {
                "GDPR: processing records with personal data minimised and erasable (Art. 30, 17)"
            }
            Preset::PciDss => {
                "PCI DSS: all access to cardholder data, no PAN in the trail, kept 1 year (10.2, 10.5)"
            }
            Preset::FdaPart11 => {
                "FDA 21 CFR Part 11: complete, never-pruned audit trail of record changes (11.10(e))"
            }
        }
    }

    /// The preset's TOML text, as shipped in `presets/`; empty for `none`.
    pub fn source(self) -> &'static str {
        match self {
            Preset::None => "",
            Preset::Soc2 => include_str!("../soc2.toml"),
            Preset::Hipaa => include_str!("../hipaa.toml"),
            Preset::Gdpr => include_str!("../gdpr.toml"),
            Preset::PciDss => include_str!("../pci-dss.toml"),
            Preset::FdaPart11 => include_str!("../fda-part11.toml"),
        }
    }

    /// The file name in `presets/`.
    pub fn file_name(self) -> String {
        format!("{}.toml", self.name())
    }
}

impl fmt::Display for Preset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
