# The pocket sweeps the experiment scripts know by name, sourced by run_pocket.sh,
# collect_results.sh and eval_fresh.sh (each run of a sweep goes to multirun/pocket-results/NAME):
#   pocket          the objective comparison             (experiment=pocket)
#   ablation        ViSurf's reward-control ablation     (experiment=pocket)
#   pocket_swapped  the comparison on the second split   (experiment=pocket_swapped)
POCKET_SWEEPS=(pocket ablation pocket_swapped)
POCKET_WORK=multirun/pocket-results

# The experiment preset a sweep's runs use (their base model is that preset's).
sweep_experiment() {
    case "$1" in
        pocket | ablation) echo pocket ;;
        pocket_swapped) echo pocket_swapped ;;
    esac
}

# The multiruns that make a sweep, one line of Hydra overrides each (run_pocket.sh runs them in
# turn; side by side, one thread each, they write the same folders). A run's folder is
# JOBNUM_RUNNAME and the job number counts within one multirun, so this split is what gives the
# committed run names (experiments/results/SWEEP/): the comparison as two multiruns (SFT,
# SFT->RLVR, RLVR: jobs 0-8; ViSurf: 0-2), the second split and the ablation one multirun per
# objective or reward control (jobs 0-2, the seed). tests/experiments/test_sweep_names.py checks it.
sweep_multiruns() {
    local seeds="seed=0,1,2" control objective
    case "$1" in
        pocket)
            echo "experiment=pocket objective=sft,sft_rlvr,rlvr $seeds"
            echo "experiment=pocket objective=visurf $seeds" ;;
        pocket_swapped)
            for objective in sft rlvr sft_rlvr visurf; do echo "experiment=pocket_swapped objective=$objective $seeds"; done ;;
        ablation)
            for control in none align no_think smooth all; do
                echo "experiment=pocket objective=visurf reward_control=$control $seeds"
            done ;;
    esac
}

# Exit 2 naming SCRIPT unless every NAME is a known sweep: `check_sweeps SCRIPT NAME...`.
check_sweeps() {
    local script=$1 name; shift
    for name in "$@"; do
        [ -n "$(sweep_experiment "$name")" ] || {
            echo "$script: no sweep named '$name' (${POCKET_SWEEPS[*]})" >&2
            exit 2
        }
    done
}
