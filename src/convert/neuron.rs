//! The spiking neuron every IF layer is made of. Both integrate the current and reset by
//! subtraction; they differ in whether a neuron may take back a spike it fired too early.
//!
//! - [`Neuron::If`]: the integrate-and-fire neuron of TTRBR and QCFS. `membrane += current`;
//!   if `membrane >= θ` it spikes (+1) and `membrane -= θ`.
//! - [`Neuron::SignedIf`]: the signed IF neuron with memory (Wang et al., 2022, "Signed
//!   neuron with memory: towards simple, accurate and high-efficient ANN-SNN conversion",
//!   IJCAI; the signed IF neuron of Hu et al., 2023, "Fast-SNN", IEEE TPAMI 45(12)). As
//!   `If`, and besides: if `membrane < 0` while the neuron has fired more positive than
//!   negative spikes so far, it fires a negative spike (−1) and `membrane += θ`. With the
//!   membrane starting at θ/2 the neuron's net count after t steps stays the rounding of
//!   its accumulated input over θ wherever one spike per step allows: a burst of early
//!   input (the deviation error of conversion) is corrected by negative spikes instead of
//!   being passed on. Fed a constant current both neurons give the same spikes, so the
//!   constant-current twin and the quantization error are the same for both.
//!
//! A layer's value at a step is `spike × θ` (θ, −θ or 0). Spike counts, firing rates and
//! synaptic operations count spikes of either sign (each is one event for the next layer).

/// Which neuron the IF layers of a converted network are.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Neuron {
    /// Integrate-and-fire, reset by subtraction, spikes of +1 only.
    #[default]
    If,
    /// Integrate-and-fire that also fires −1 when its membrane falls below 0 and its net
    /// spike count is positive (Wang et al., 2022).
    #[serde(rename = "signed")]
    SignedIf,
}

impl Neuron {
    pub const ALL: [Neuron; 2] = [Neuron::If, Neuron::SignedIf];

    /// The name on the command line, in converted-SNN files and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Neuron::If => "if",
            Neuron::SignedIf => "signed",
        }
    }

    /// Whether the neuron fires negative spikes.
    pub fn signed(self) -> bool {
        self == Neuron::SignedIf
    }

    /// One line saying what the neuron does, for the command's output.
    pub fn describe(self) -> &'static str {
        match self {
            Neuron::If => "neuron: integrate-and-fire, reset by subtraction",
            Neuron::SignedIf => {
                "neuron: signed integrate-and-fire with memory (also fires -1 when the membrane falls below 0 \
                 after more positive than negative spikes; Wang et al. 2022)"
            }
        }
    }
}

impl std::fmt::Display for Neuron {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Neuron {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Neuron::ALL
            .into_iter()
            .find(|neuron| neuron.name() == s)
            .ok_or_else(|| format!("unknown neuron `{s}`; valid: if, signed"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for neuron in Neuron::ALL {
            assert_eq!(neuron.name().parse::<Neuron>(), Ok(neuron));
        }
        assert!("relu".parse::<Neuron>().unwrap_err().contains("if, signed"));
    }
}
